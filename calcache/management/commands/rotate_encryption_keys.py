"""Re-encrypt every stored OAuth token with the newest key of CALCACHE_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calcache.exceptions import TokenDecryptionError
from calcache.services import rotate_token_encryption


class Command(BaseCommand):
    help = (
        "Re-encrypt every credential's token with the first key of CALCACHE_ENCRYPTION_KEYS. "
        "Put the new key first, keep the old ones after it, run this, then drop the old keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            rotated = rotate_token_encryption(batch_size=batch_size)
        except TokenDecryptionError as exc:
            raise CommandError(
                f"{exc} Nothing in the failing batch was changed; earlier batches were rotated. "
                "Add the missing key back to CALCACHE_ENCRYPTION_KEYS and run again."
            ) from exc
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {rotated} credential token(s)."))
