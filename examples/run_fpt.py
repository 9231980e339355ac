#!/usr/bin/env python
"""Train a Frozen Pretrained Transformer (or a baseline) on one FPT task with `transformers.Trainer`.

    python examples/run_fpt.py --task bit_xor --backbone smollm2-135m --method fpt --preset cpu
    accelerate launch --config_file examples/accelerate_configs/multi_gpu.yaml examples/run_fpt.py \
        --task cifar10 --backbone gpt2 --method fpt --preset paper --bf16

Every `TrainingArguments` flag works (`--learning_rate`, `--max_steps`, `--push_to_hub --hub_model_id ...`,
`--resume_from_checkpoint`, `--report_to tensorboard`). Results go to `--results_dir` as JSON.
"""

from fpt_hf.training import parse_args, run_training

if __name__ == "__main__":
    fpt_args, training_args = parse_args()
    results = run_training(fpt_args, training_args)
    if training_args.process_index == 0:
        print(f"{results['task']} {results['method']}: {results['eval_split']} accuracy = {results['accuracy']:.4f}")
