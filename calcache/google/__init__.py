"""calcache's only door to Google: ``GoogleCalendarClient`` and the OAuth code exchange."""

from calcache.google.client import GoogleCalendarClient
from calcache.google.types import CalendarInfo, ChannelInfo, EventPage, FreeBusyCalendar

__all__ = ["CalendarInfo", "ChannelInfo", "EventPage", "FreeBusyCalendar", "GoogleCalendarClient"]
