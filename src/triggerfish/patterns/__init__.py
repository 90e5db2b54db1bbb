"""EventBridge-compatible event patterns: validate, compile, and match events.

``compile(pattern)`` gives a ``Pattern`` with ``matches(event)``; ``RuleSet`` matches
an event against many patterns at once; ``event_view`` gives the dict of a CloudEvent
that patterns apply to. Invalid patterns raise ``triggerfish.errors.PatternError``.
"""

from triggerfish.errors import PatternError
from triggerfish.patterns.pattern import Pattern, compile
from triggerfish.patterns.ruleset import RuleSet
from triggerfish.patterns.view import event_view

__all__ = ["Pattern", "PatternError", "RuleSet", "compile", "event_view"]
