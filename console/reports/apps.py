from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "console.reports"
    label = "reports"
    verbose_name = "Reports: daily standup, weekly maintenance, monthly SLO review"
