"""Helpers shared by the simulator's tests."""
import textwrap

import pytest


@pytest.fixture
def csv_file(tmp_path):
    """A factory: CSV text (dedented) → the path of a file holding it."""

    def make(text, name="signals.csv"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip())
        return str(path)

    return make
