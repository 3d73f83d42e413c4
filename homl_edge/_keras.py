"""Every Keras a user may hand us, and the one place that touches private Keras, TF-MOT and SavedModel APIs.

Two Kerases live side by side in one process: Keras 3 (the ``keras`` package, what ``pip install tensorflow``
gives and what ``tf.keras`` is when TensorFlow was imported before homl-edge) and Keras 2 (``tf_keras``), which the
Model Optimization Toolkit and the TF.js converter need. The TFLite converter takes both. Where Keras 2 is needed,
:func:`to_legacy` translates a Keras 3 model layer by layer (configs cleaned, TF ops mapped, weights copied) and
refuses, in one line, unless the copy's outputs agree with the original's within 1e-5; :func:`like` hands a
result back in the flavour the user gave.
"""
from __future__ import annotations

# The one import site for the rest of the package, with every name this module had. Each part has one job:
# _keras_flavour (which Keras, what model), _keras_translate (Keras 3 -> tf_keras and back), _keras_files (load and
# save, safe mode), _keras_tfmot (TF-MOT bound to tf_keras), _keras_graph (a functional model's graph).
from ._keras_flavour import (AGREEMENT, RECURRENT, _is_model_class, _predict, check_model, compiled_loss_weights,
                             disagreement, flavour, input_specs, is_functional, is_keras3, is_recurrent, keras3,
                             layer_kinds, legacy, model_of, probe_inputs, require_functional, SavedModelSource)
from ._keras_translate import (_ACTIVATIONS, _BASE_KWARGS, _COMMUTATIVE, _HARMLESS, _OPS, _accepted_kwargs,
                               _activation, _clean_layer_config, _clean_value, _copy_weights,
                               _filtered_object_config, _history_list, _is_tensor, _k3_hard_sigmoid,
                               _k3_hard_silu, _set_batch, _translate_layer, _translate_model_config,
                               _translate_node, _translate_op, like, to_legacy, translate_loss)
from ._keras_files import (_CODE_CLASSES, _load_saved_model, _refuse_code, _stored_configs, code_layers,
                           keras_version_of, load_keras, load_model, save_keras)
from ._keras_tfmot import (cluster_supports, is_qat_model, layers_within, prune_supports, qat_supports, tfmot,
                           tfmot_scope, without_training_wrappers)
from ._keras_graph import (consumers, inbound_layer, kernel_of, output_layer_names)
