r"""Checkers for the notebooks' exercises.

Every exercise in a notebook is three cells: a markdown question, a code cell tagged ``solution``
that assigns ``answer_N = ...`` (student copies replace it with ``answer_N = None``), and a checker
cell calling one function of this module, e.g. ``check_00_head_fraction(answer_1, train_set)``.

The pattern, for whoever adds exercises (one function per exercise, named
``check_<notebook number>_<what>``):

* compute the expected value from first principles or from the library, **not** from the answer;
* call :func:`_verdict`, which prints a friendly line when the answer is right and raises
  ``AssertionError`` with a hint (never the answer itself) when it is wrong;
* an unanswered exercise (``None``) prints what to do and returns (decorate every checker with
  :func:`~cirlib.exercises._checking.checker`): a student copy runs top to bottom unanswered.

One module per notebook: ``cirlib/exercises/nb00.py`` ... ``nb08.py``.
"""

from cirlib.exercises._checking import check_explanation
from cirlib.exercises import nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08
from cirlib.exercises.nb00 import *  # noqa: F401,F403
from cirlib.exercises.nb01 import *  # noqa: F401,F403
from cirlib.exercises.nb02 import *  # noqa: F401,F403
from cirlib.exercises.nb03 import *  # noqa: F401,F403
from cirlib.exercises.nb04 import *  # noqa: F401,F403
from cirlib.exercises.nb05 import *  # noqa: F401,F403
from cirlib.exercises.nb06 import *  # noqa: F401,F403
from cirlib.exercises.nb07 import *  # noqa: F401,F403
from cirlib.exercises.nb08 import *  # noqa: F401,F403

__all__ = sorted(
    ["check_explanation"]
    + nb00.__all__ + nb01.__all__ + nb02.__all__ + nb03.__all__ + nb04.__all__ + nb05.__all__ + nb06.__all__
    + nb07.__all__ + nb08.__all__
)
