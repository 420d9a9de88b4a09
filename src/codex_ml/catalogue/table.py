"""What the built-in catalogue ships: kind -> key -> ``"module:factory"``.

A plain table, so that the registries can list the catalogue without
importing pluggy when no hook plugin is installed;
:mod:`codex_ml.catalogue.plugin` serves the same table through pluggy hooks.
The keys and paths are those of the spec's "Bundled offline catalogue".
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

#: The name the catalogue has among the hook plugins (``codex-ml plugins list``).
PLUGIN_NAME = "codex_ml.catalogue"

#: kind -> key -> "module:factory". The single source of truth for what ships.
CATALOGUE: Mapping[str, Mapping[str, str]] = {
    "tokenizer": {
        "hf": "codex_ml.tokenizers.hf:load_hf_tokenizer",
        "gpt2-offline": "codex_ml.tokenizers.hf:gpt2_offline_tokenizer",
        "tinyllama-offline": "codex_ml.tokenizers.hf:tinyllama_offline_tokenizer",
        "bytes": "codex_ml.tokenizers.byte_level:ByteTokenizer",
        "bpe": "codex_ml.tokenizers.bpe:bpe_tokenizer",
    },
    "model": {
        "minilm": "codex_ml.models.decoder_only:build_minilm",
        "decoder_only": "codex_ml.models.decoder_only:build_decoder_only",
        "hf": "codex_ml.models.hf:hf_model",
        "gpt2-offline": "codex_ml.models.hf:gpt2_offline_model",
        "tinyllama-offline": "codex_ml.models.hf:tinyllama_offline_model",
    },
    "data_loader": {
        "lines": "codex_ml.data.lines:load_lines",
        "offline:tiny-corpus": "codex_ml.data.lines:load_tiny_corpus",
        "jsonl": "codex_ml.data.jsonl:load_jsonl",
        "csv": "codex_ml.data.delimited:load_csv",
        "parquet": "codex_ml.data.parquet:load_parquet",
        "hf-datasets": "codex_ml.data.hf_datasets:load_hf_dataset",
        "files": "codex_ml.data.files:load_files",
    },
    "metric": {
        "accuracy@token": "codex_ml.metrics.token_accuracy:build_token_accuracy",
        "ppl": "codex_ml.metrics.perplexity:build_perplexity",
        "exact_match": "codex_ml.metrics.text_overlap:build_exact_match",
        "f1": "codex_ml.metrics.text_overlap:build_f1",
        "dist-1": "codex_ml.metrics.distinct:build_distinct_1",
        "dist-2": "codex_ml.metrics.distinct:build_distinct_2",
        "offline:weighted-accuracy": "codex_ml.metrics.weighted_accuracy:build_weighted_accuracy",
    },
    "trainer": {
        "offline:functional": "codex_ml.training.functional:FunctionalTrainer",
    },
    "reward_model": {
        "offline:heuristic": "codex_ml.rewards.heuristic:HeuristicRewardModel",
    },
    "callback": {
        "tensorboard": "codex_ml.callbacks.tensorboard_events:TensorBoardCallback",
        "mlflow": "codex_ml.callbacks.mlflow_runs:MLflowCallback",
        "wandb": "codex_ml.callbacks.wandb_runs:WandbCallback",
        "csv": "codex_ml.callbacks.csv_file:CSVCallback",
        "early-stopping": "codex_ml.callbacks.early_stopping:EarlyStopping",
    },
    "optimizer": {
        "adamw": "codex_ml.training.optim:adamw",
        "adam": "codex_ml.training.optim:adam",
        "sgd": "codex_ml.training.optim:sgd",
        "adafactor": "codex_ml.training.optim:adafactor",
    },
    "scheduler": {
        "cosine": "codex_ml.training.schedules:cosine",
        "linear": "codex_ml.training.schedules:linear",
        "constant": "codex_ml.training.schedules:constant",
        "wsd": "codex_ml.training.schedules:wsd",
    },
    "adapter": {
        "lora": "codex_ml.adapters.lora:LoRA",
        "freeze": "codex_ml.adapters.freeze:Freeze",
    },
}
