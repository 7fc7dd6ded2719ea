"""The flag and switch names calcache ships (created by ``flags`` migration 0002)."""

READ_FLAG = "calendar-cache-sql"
WRITE_FLAG = "calendar-cache-sql-write"
KILL_SWITCH = "calendar-cache-sql-killswitch"

# Both calendar-cache flags share one rollout key, so a user's bucket is the same
# for reading and writing: at read 25% / write 50%, every reader is also a writer.
CALENDAR_CACHE_ROLLOUT_KEY = "calendar-cache-sql"
