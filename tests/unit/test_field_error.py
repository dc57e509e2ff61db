"""fleet.errors.field_error: the one place a pydantic error becomes its one line."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from fleet.errors import field_error


class Inner(BaseModel):
    port: int

    @field_validator("port")
    @classmethod
    def _in_range(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError(f"{value} is not a TCP port")
        return value


class Outer(BaseModel):
    inner: Inner


def error_of(doc: object) -> ValidationError:
    with pytest.raises(ValidationError) as err:
        Outer.model_validate(doc)
    return err.value


def test_the_location_is_dotted_and_the_validator_prefix_goes() -> None:
    err = field_error(error_of({"inner": {"port": 70000}}))
    assert (err.where, err.reason) == ("inner.port", "70000 is not a TCP port")
    assert err.line() == "inner.port: 70000 is not a TCP port"


def test_a_wrong_document_names_the_top() -> None:
    assert field_error(error_of([1])).line("(top)").startswith("(top): ")
    assert field_error(error_of({"inner": {"port": "x"}})).reason.startswith("Input should be")
