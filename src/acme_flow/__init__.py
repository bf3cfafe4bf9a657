"""certrenew: serverless ACME certificate renewer for AWS."""
