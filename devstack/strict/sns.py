"""SNS Publish as AWS checks it: size of the whole message, and the Subject's form.

- The message is at most 262,144 bytes in total: the Message (with MessageStructure=json, the
  whole JSON document: all its parts together) plus every message attribute's name, data type
  and value. Else 400 InvalidParameter "Invalid parameter: Message too long".
- A Subject is ASCII, starts with a letter, digit or punctuation mark, has no line break or
  control character and is shorter than 100 characters. Else "Invalid parameter: Subject".
"""

from __future__ import annotations

import base64
import binascii
import re

from devstack.strict import RULE_FACTORIES, AwsError, Call

MAX_MESSAGE_BYTES = 262_144
MAX_SUBJECT_CHARS = 99  # "must be less than 100 characters long"
_ATTRIBUTE = re.compile(r"^MessageAttributes\.entry\.(\d+)\.(Name|Value\.DataType|Value\.StringValue|Value\.BinaryValue)$")
_SUBJECT = re.compile(r"^[!-~][ -~]*$")  # printable ASCII, not starting with a space


def _invalid(what: str) -> AwsError:
    return AwsError("InvalidParameter", f"Invalid parameter: {what}", 400)


def attributes_size(form: dict[str, str]) -> int:
    """Bytes of the message attributes as SNS counts them: name + data type + value of each."""
    size = 0
    for field, value in form.items():
        match = _ATTRIBUTE.match(field)
        if not match:
            continue
        if match.group(2) == "Value.BinaryValue":
            try:
                size += len(base64.b64decode(value))
            except (binascii.Error, ValueError):
                size += len(value)
        else:
            size += len(value.encode("utf-8"))
    return size


def message_size(form: dict[str, str]) -> int:
    return len(form.get("Message", "").encode("utf-8")) + attributes_size(form)


def check_subject(subject: str) -> None:
    if len(subject) > MAX_SUBJECT_CHARS or not _SUBJECT.match(subject):
        raise _invalid("Subject")


class PublishRule:
    """Publish: total size and Subject."""

    def before(self, call: Call) -> None:
        if call.service != "sns" or call.operation != "Publish":
            return
        form = call.form()
        size = message_size(form)
        if size > MAX_MESSAGE_BYTES:
            raise _invalid(f"Message too long ({size} bytes with attributes; at most {MAX_MESSAGE_BYTES})")
        if "Subject" in form:
            check_subject(form["Subject"])


RULE_FACTORIES.append(PublishRule)
