"""The runbook's Day-2 reviews: daily standup, weekly maintenance, monthly SLO review.

Each is a plain function computing a typed result from the database (`daily.py`,
`weekly.py`, `monthly.py`); pages (`views.py`) and `/api/reports/...` (`api.py`) only
present it, and the notifications app sends it on a schedule.
"""
