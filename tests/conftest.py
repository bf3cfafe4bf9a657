# The devstack fixtures (`stack`, `aws`, `restart_pebble`) for tests/integration, tests/handler
# and tests/faults; unit tests never request them, so they never start anything.
pytest_plugins = ["devstack_fixtures", "secret_scan"]
