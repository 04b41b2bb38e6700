"""The app's one repo-id rule (both push dialogs), checked against huggingface_hub's own."""

from __future__ import annotations

import pytest
from huggingface_hub.utils import HFValidationError, validate_repo_id

from engine.sources import repo_id_error

VALID = ["me/sks-dog", "Me_2/model.v1", "a/b", "org-name/x_y.z"]
INVALID = [
    "sks-dog",  # no namespace: a push needs one
    "me/my model",
    "me/",
    "/name",
    "me/name/extra",
    "me--x/name",
    "me/na..me",
    "me/name-",
    "me/" + "n" * 97,
    "",
    "hf_abcdef/ü",
]


@pytest.mark.parametrize("value", VALID)
def test_valid_repo_ids_pass_here_and_in_huggingface_hub(value: str) -> None:
    validate_repo_id(value)
    assert repo_id_error(value) is None


@pytest.mark.parametrize("value", INVALID)
def test_invalid_repo_ids_are_refused_in_one_line(value: str) -> None:
    message = repo_id_error(value)
    assert message and "\n" not in message and "owner/name" in message
    if "/" in value and value.count("/") == 1 and value.split("/")[0]:
        with pytest.raises(HFValidationError):
            validate_repo_id(value)


def test_both_push_dialogs_use_the_one_rule() -> None:
    from tui.screens.data_push import push_modal
    from tui.screens.generate_push import repo_modal

    assert push_modal("photos", "me/photos")._validate is repo_id_error
    assert repo_modal("run", "me/run", False)._validate is repo_id_error
