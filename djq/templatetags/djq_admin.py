"""Template filters of djq's admin pages."""

from django import template

register = template.Library()


@register.filter
def task_short(name: str) -> str:
    """``app.tasks.send_mail`` → ``send_mail``: the part that names the function."""
    return str(name).rsplit(".", 1)[-1]


@register.filter
def task_module(name: str) -> str:
    """``app.tasks.send_mail`` → ``app.tasks`` (empty for a name without dots)."""
    parts = str(name).rsplit(".", 1)
    return parts[0] if len(parts) == 2 else ""
