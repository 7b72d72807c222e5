"""Hugging Face model folders: ``Model.from_pretrained(folder)`` and ``model.save_pretrained``.

Every model the course trains (the Fast dual encoder, the Slow captioner, its ITM twin and the
video models) mixes in :class:`HubModel`, huggingface_hub's ``PyTorchModelHubMixin`` with the
course's own weights format. A folder holds

* ``config.json``: the model's ``hub_config()``, the arguments its constructor is called with
  (``{"config": {...}}``, plus ``frames`` for a video model);
* ``model.safetensors``: the weights (safetensors' ``save_model``, through
  :func:`fastslow_lib.core.checkpoint.save_weights`).

So ``DualEncoder.from_pretrained("data/release/fast")`` rebuilds the release Fast model with
no training code, ``model.save_pretrained(folder)`` writes one, and ``push_to_hub`` /
``from_pretrained("user/repo")`` move them through a hub (nothing in the course downloads).

Taught in notebooks/01_fast.ipynb (the release models).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import PyTorchModelHubMixin

from fastslow_lib.core.checkpoint import WEIGHTS_NAME, load_state, save_weights

__all__ = ["HubModel"]

#: What the mixin passes to ``_from_pretrained`` besides the model's own arguments.
_HUB_ARGUMENTS = ("revision", "cache_dir", "force_download", "local_files_only", "token")


class HubModel(PyTorchModelHubMixin, library_name="fastslow"):
    """``from_pretrained`` / ``save_pretrained`` / ``push_to_hub`` for the course's models.

    A subclass defines :meth:`hub_config`; its constructor must accept that dict's entries
    as keyword arguments (``config`` as a dict).
    """

    def hub_config(self) -> dict[str, Any]:
        """The constructor's arguments as JSON: ``{"config": self.config.to_dict()}``."""
        return {"config": self.config.to_dict()}  # type: ignore[attr-defined]

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> Any:  # type: ignore[override]
        """Write ``config.json`` (:meth:`hub_config`) and ``model.safetensors`` to a folder."""
        return super().save_pretrained(save_directory, config=self.hub_config(), **kwargs)

    def _save_pretrained(self, save_directory: Path) -> None:
        save_weights(self, Path(save_directory) / WEIGHTS_NAME)  # type: ignore[arg-type]

    @classmethod
    def _from_pretrained(cls, *, model_id: str, map_location: str = "cpu", strict: bool = False,
                         **kwargs: Any) -> Any:
        # A local folder is read here, without the mixin's "Loading weights from local
        # directory" print (it would land in every notebook output that loads a model).
        if not Path(model_id).is_dir():
            return super()._from_pretrained(model_id=model_id, map_location=map_location,
                                            strict=strict, **kwargs)
        model = cls(**{k: v for k, v in kwargs.items() if k not in _HUB_ARGUMENTS})
        return cls._load_as_safetensor(model, str(Path(model_id) / WEIGHTS_NAME), map_location,
                                       strict)

    @classmethod
    def _load_as_safetensor(cls, model: Any, model_file: str, map_location: str,
                            strict: bool) -> Any:
        # Every tensor must fit (the course never loads a partial model), whatever ``strict``.
        load_state(model, model_file)
        return model.to(map_location).eval()
