"""Label Studio loop: run a local server, push passages with model pre-annotations, pull annotations.

- ``server``: install Label Studio into its own virtualenv (.labelstudio/venv) from
  labelstudio/requirements.lock, start/stop it, create the admin user and API token.
- ``client``: label-studio-sdk 2.x client: project create/update, push, pull.
- ``convert``: pure conversions (predictions → results, export merging, agreement).
- ``active``: active-learning order of the tasks.
- ``cli``: ``framing labelstudio start|stop|status|push|pull``.
"""
