"""Random run names in MLflow's style (`adjective-noun-123`)."""

from __future__ import annotations

import random

__all__ = ["random_run_name"]

_ADJECTIVES = (
    "able amber bold brave bright calm clever cool crisp dapper eager fair fast fresh gentle "
    "glad grand happy honest keen kind lively loyal lucky merry mighty neat nimble noble proud "
    "quick quiet rare rich sharp shy smart smooth snappy solid swift tidy vivid warm wise zesty"
).split()
_NOUNS = (
    "ant bass bat bear bee bird boar carp cat colt crab crow deer dog dove duck eel elk fawn "
    "finch fish fox frog goat gull hare hawk hen horse jay koala lamb lark lion lynx mole moth "
    "mouse newt owl ox panda pig pony ram robin seal shark sheep slug snail swan toad trout wasp whale wolf worm yak"
).split()


def random_run_name() -> str:
    """A readable name for a run the user did not name."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(100, 999)}"
