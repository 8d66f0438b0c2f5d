"""Sweeps (DESIGN §21), the core: the manifest models, member names, the expansion of a matrix
into member jobs in validate, its located errors, and the planner seeing members as jobs."""

from __future__ import annotations

import pytest

from trainops.manifest import Matrix, Member, Sweep, SweepSet, member_name, scalar_text, set_of
from trainops.plan import Desired


def test_member_name_is_the_set_a_dot_and_a_suffix_of_its_own_values():
    member = Member("lora", {"learning_rate": 1.0e-4, "rank": 8})
    assert member.name == member_name("lora", {"learning_rate": 1.0e-4, "rank": 8})
    assert member.name.startswith("lora.0-0001-8-")
    assert set_of(member.name) == "lora"
    assert set_of("lora") == ""


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"x": 1}, {"x": 1.0}),  # YAML types kept: int and float are different members
        ({"x": 1}, {"x": "1"}),
        ({"x": True}, {"x": "true"}),
        ({"x": "a_b"}, {"x": "a-b"}),  # the same slug, a different hash
        ({"x": 1, "y": 2}, {"x": 2, "y": 1}),
    ],
)
def test_different_values_never_share_a_name(a, b):
    assert member_name("s", a) != member_name("s", b)


def test_the_suffix_ignores_axis_order_and_falls_back_to_a_hash_when_long():
    assert member_name("s", {"a": 1, "b": 2}) == member_name("s", {"b": 2, "a": 1})
    long = member_name("s", {"prompt": "x" * 80})
    assert len(long) == len("s.") + 10 and all(c in "0123456789abcdef" for c in long[2:])
    assert len(member_name("s", {"cfg": {"a": 1}})) == len("s.") + 10


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0e-4, "0.0001"), (1.0e-5, "1.0e-05"), (True, "true"), (None, "null"), (8, "8"), ("a", "a")],
)
def test_scalar_text_is_what_yaml_writes(value, text):
    assert scalar_text(value) == text


def test_models_of_the_set_settings():
    matrix = Matrix.model_validate({"lr": [1, 2], "include": [{"lr": 3}], "exclude": []})
    assert matrix.axes == {"lr": [1, 2]}
    sweep = Sweep.model_validate(
        {"max_parallel": 2, "select": {"metric": "eval_loss", "goal": "minimize"}}
    )
    assert sweep.max_parallel == 2 and sweep.select is not None
    sweep_set = SweepSet("lora", ("lora.a", "lora.b"), sweep, 20.0)
    assert sweep_set.members == ("lora.a", "lora.b") and sweep_set.promote is None


def test_a_recorded_member_of_a_set_that_does_not_validate_is_invalid_too():
    desired = Desired({}, invalid=frozenset({"lora"}))
    assert desired.is_invalid("lora.0-0001-8-67d14dec05")
    assert desired.is_invalid("lora")
    assert not desired.is_invalid("lora2.x") and not desired.is_invalid("other")
