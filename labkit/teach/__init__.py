"""The course: notebook helpers, exercises, widgets, handouts."""
