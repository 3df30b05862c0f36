"""The WSGI entry point gunicorn serves: regapp.wsgi:app."""

from regapp.web import create_app

app = create_app()
