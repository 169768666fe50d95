"""A small Celery Django project (``before/``) and the same project converted to djq by following
docs/migrating-from-celery.md (``after/``). tests/test_celery_sample.py checks that the conversion
is the guide's (and djq_check_celery's), and the converted project's own tests
(``after/shop/test_shop.py``) run on djq with real workers.

``before/`` is never imported: it needs Celery, which djq's test environment does not install.
``after/`` is a project directory (manage.py, proj/, shop/) put on sys.path by the tests.
"""
