"""Every argument check of the package, in one place.

Checks run when users build things (a settings object, a sampler, a report), outside the
compiled program, and raise with a message that names the argument and what was expected.
Kernels trust what was checked here. Values that are tracers (the caller is inside
``jit``/``vmap``) are checked for shape and dtype only.
"""

from robust_score._checks.arrays import (
    check_chain_axis,
    check_data_matrix,
    check_event_shape,
    check_finite_tree,
    check_inverse_mass_matrix,
    check_labels,
    check_mass_matches_position,
    check_position_dtype,
    check_scalar_output,
    check_score_output,
    check_time_score_output,
    explain_failed_init,
    is_concrete,
)
from robust_score._checks.numpyro import (
    check_continuous,
    check_dense_mass,
    check_finite_start,
    check_inverse_mass_blocks,
    check_mass_structure,
    check_model_arguments,
    check_model_or_potential,
    check_site_fn,
)
from robust_score._checks.values import (
    check_callable,
    check_choice,
    check_count,
    check_flag,
    check_float_dtype,
    check_fraction,
    check_interval,
    check_key,
    check_positive_scalar,
    check_sampler_or_kernel,
    check_sampling_algorithm,
    check_time,
    check_time_range,
    check_widths,
    default_float_dtype,
)

__all__ = [
    "check_callable",
    "check_chain_axis",
    "check_choice",
    "check_continuous",
    "check_dense_mass",
    "check_inverse_mass_blocks",
    "check_mass_structure",
    "check_count",
    "check_data_matrix",
    "check_flag",
    "check_event_shape",
    "check_finite_start",
    "check_finite_tree",
    "check_float_dtype",
    "check_inverse_mass_matrix",
    "check_fraction",
    "check_interval",
    "check_key",
    "check_labels",
    "check_mass_matches_position",
    "check_model_arguments",
    "check_model_or_potential",
    "check_position_dtype",
    "check_positive_scalar",
    "check_sampler_or_kernel",
    "check_sampling_algorithm",
    "check_scalar_output",
    "check_score_output",
    "check_site_fn",
    "check_time",
    "check_time_range",
    "check_time_score_output",
    "check_widths",
    "default_float_dtype",
    "explain_failed_init",
    "is_concrete",
]
