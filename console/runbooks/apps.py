from django.apps import AppConfig


class RunbooksConfig(AppConfig):
    name = "console.runbooks"
    label = "runbooks"
