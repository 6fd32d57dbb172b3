"""Label Studio loop: run a local server, push passages with model pre-annotations, pull annotations.

- ``server``: install Label Studio into its own virtualenv (.labelstudio/venv) from
  labelstudio/requirements.lock, start/stop it, create the admin user and API token.
- ``plan``: what a push will do, decided without the server (``plan_push``).
- ``client``: label-studio-sdk 2.x client: project create/update, execute a push plan, pull.
- ``convert``: pure conversions (passages → task data, export merging).
- ``prediction``: model outputs → Label Studio pre-annotations and confidence (shared with serving).
- ``active``: active-learning order of the tasks.
- ``cli``: ``framing labelstudio start|stop|status|push|pull``.
"""
