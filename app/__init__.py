"""procrun's reference application: a WSGI web app, a Celery worker and Celery Beat on Redis.

It meets procrun only through the Procfile and imports nothing from it, so it can be copied out
as the starting point of a real deployment.
"""
