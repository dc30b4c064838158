"""The neutron-star equation of state from observations (the main job, ``bayesqcd ns-eos``).

Layer: studies (imports core, ``bayesqcd.models.neutron_star``, ``bayesqcd.inference`` and
``bayesqcd.report``; never cli).

* :mod:`.data` -- :class:`DataSpec` (real data, a user's table, mocks) and :func:`load_data`;
* :mod:`.experiment` -- :class:`Config`, :func:`infer` (NUTS/SVI on the model), :func:`run`;
* :mod:`.report` -- headline numbers, bands and figures of an EoS posterior;
* :mod:`.compare` -- two results side by side (``bayesqcd compare``).
"""

from bayesqcd.studies.neutron_star.data import DataSpec, load_data, mock_observations
from bayesqcd.studies.neutron_star.experiment import Config, infer, run

__all__ = ["Config", "DataSpec", "infer", "load_data", "mock_observations", "run"]
