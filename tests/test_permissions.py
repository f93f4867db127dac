"""What an account lacks to write a run, from a server's answers (a fake server here; a real one in
tests/test_server_auth.py)."""

from types import SimpleNamespace

from pipeline.tracking.permissions import EXPERIMENT, REGISTERED_MODEL, USER_PERMISSION, lacking


def server(answers: dict):
    """A `get` answering (endpoint, resource key) with (status, json); 404 for anything else."""
    asked = []

    def get(endpoint: str, params: dict):
        key = params.get("experiment_name") or params.get("resource_id") or params.get("name")
        asked.append((endpoint, key))
        status, body = answers.get((endpoint, key), (404, {}))
        return SimpleNamespace(status_code=status, json=lambda: body)

    return get, asked


EXPERIMENT_1 = {(EXPERIMENT, "e"): (200, {"experiment": {"experiment_id": "1"}})}


def test_edit_or_manage_on_the_experiment_and_the_model_pass():
    for permission in ("EDIT", "MANAGE"):
        get, _ = server(
            {
                **EXPERIMENT_1,
                (USER_PERMISSION, "1"): (200, {"permission": permission}),
                (REGISTERED_MODEL, "m"): (200, {}),
                (USER_PERMISSION, "m"): (200, {"permission": "EDIT"}),
            }
        )
        assert lacking(get, "alice", "e", "m") is None


def test_read_on_the_experiment_names_the_account_the_experiment_and_the_grant():
    get, _ = server({**EXPERIMENT_1, (USER_PERMISSION, "1"): (200, {"permission": "READ"})})
    assert lacking(get, "alice", "e") == (
        "account 'alice' has READ on experiment 'e', and a training needs EDIT on it; ask the server's admin "
        "for it: python -m pipeline.server users grant alice EDIT --experiment e"
    )


def test_an_experiment_the_account_cannot_see_or_a_model_it_cannot_write_is_named():
    get, _ = server({(EXPERIMENT, "e"): (403, {})})
    assert lacking(get, "bob", "e").startswith("account 'bob' has no permission on experiment 'e', and a training")
    get, _ = server(
        {
            **EXPERIMENT_1,
            (USER_PERMISSION, "1"): (200, {"permission": "EDIT"}),
            (REGISTERED_MODEL, "m"): (200, {}),
            (USER_PERMISSION, "m"): (200, {"permission": "READ"}),
        }
    )
    assert lacking(get, "bob", "e", "m").endswith("users grant bob EDIT --registered-model m")


def test_what_does_not_exist_yet_passes_and_a_server_without_accounts_is_asked_no_further():
    get, asked = server({})
    assert lacking(get, "alice", "e", "m") is None  # the account will create them, and hold MANAGE on them
    assert asked == [(EXPERIMENT, "e"), (REGISTERED_MODEL, "m")]
    get, asked = server(EXPERIMENT_1)  # users/permissions/get: 404 without the basic-auth app
    assert lacking(get, "alice", "e", "m") is None and len(asked) == 2
