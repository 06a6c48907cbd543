import sys

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        if sys.argv[1:2] == ["qcluster"]:
            from integrations.tasks import warm_up

            warm_up()  # the cluster forks its workers from this process: they inherit it all
