"""What J and ∇J are of, apart from θ and the examples: one frozen description per objective.

:class:`fastnn.Objective` builds it once from its checked arguments and the prepared data, and
hands it whole to the backend's :meth:`~fastnn.backends.Backend.cost_and_grad` and
:meth:`~fastnn.backends.Backend.loss_and_delta`; a backend unpacks the numbers its kernels take
in one place.
"""

from dataclasses import dataclass, field

import numpy as np

from fastnn.losses import output_code


@dataclass(frozen=True)
class Problem:
    """The network, its output and loss, the penalty and the number of examples of an objective.

    On b of its m examples (a mini-batch; b = m for all of them), with example weights w_i
    scaled to mean 1 (:class:`fastnn._validation.Targets`) and W = Σ w the given weights' sum:

        J = (1/b) Σ_i w_i Σ_k loss term + (λ / 2W) Σ Θ²        ∇J = Δ/b + (λ/W) Θ

    with the bias column unpenalized: the batch estimate of the data term plus the penalty of
    the whole objective, so that the batches of an epoch average to J. The fields hold checked
    values (no check is made here but the pair of output and loss).

    layers : tuple of int
        ``(s_1, ..., s_L)``.
    activation : str
        Of the hidden layers, a key of :data:`fastnn.activations.ACTIVATIONS`.
    output_activation, loss : str
        The output layer and its loss, a pair of :data:`fastnn.losses.OUTPUTS`.
    lam : float
        λ ≥ 0, as given.
    weight_scale : float
        ``m / W``, 1 without example weights.
    m : int
        The objective's number of examples (a mini-batch's is its data's ``m``).
    dtype : numpy.dtype
        Of θ, X and ∇J in the computation.
    """

    layers: tuple
    activation: str
    output_activation: str
    loss: str
    lam: float
    weight_scale: float
    m: int
    dtype: np.dtype
    output: int = field(init=False)
    """The code of the output layer and loss (:data:`fastnn.losses.OUTPUTS`), what the kernels
    branch on."""

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "output", output_code(self.output_activation, self.loss))

    @property
    def decay(self):
        """λ/W, as ``λ · weight_scale / m``: the factor of Θ in ∇J's penalty."""
        return self.lam * self.weight_scale / self.m

    def penalty(self, squares):
        """The penalty (λ/2W) Σ Θ² of J, given ``squares`` = Σ Θ² (bias column excluded)."""
        return 0.5 * (self.lam * self.weight_scale) * squares / self.m
