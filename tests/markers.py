"""Shared pytest markers."""

import pytest

# For tests whose work must really commit (worker threads, live_server, locks across
# connections). serialized_rollback restores what the migrations created (the rollout
# flags) after the flush that ends every such test.
committing = pytest.mark.django_db(transaction=True, serialized_rollback=True)
