"""The README's fine-tuning example: it runs as pasted, the frozen encoder stays bit-identical, and
fine-tuning the decoder on 16 masks raises the mIoU on the new images.

The example is read from the README (the ```python block that freezes the encoder), run in a fresh namespace,
and judged by what it printed and the names it left behind.
"""
import re

from tests.test_readme import README, python_blocks


def the_example():
    blocks = [code for _, code, _ in python_blocks(README.read_text()) if "layer.trainable = False" in code]
    assert len(blocks) == 1, "the README should hold one fine-tuning example"
    return blocks[0]


def test_the_fine_tuning_example_runs_and_keeps_the_encoder_frozen(capsys):
    names = {"__name__": "fine_tuning_example"}
    exec(compile(the_example(), "fine_tuning_example.py", "exec"), names)
    out = capsys.readouterr().out
    assert "Trainable params: 6,962" in out and "Non-trainable params: 5,152" in out
    line = re.search(r"mIoU on new images: ([0-9.]+) -> ([0-9.]+); encoder unchanged: (\w+)", out)
    assert line, out
    before, after = float(line.group(1)), float(line.group(2))
    assert line.group(3) == "True"
    assert after > before + 0.1, (before, after)             # the decoder learnt the new images
    model, encoder = names["model"], names["encoder"]
    assert [layer.name for layer in encoder] == ["enc_conv1", "enc_bn1", "enc_pool", "enc_conv2"]
    assert not any(layer.trainable for layer in encoder)
    # what the example checks, checked here too, with the weights themselves
    for a, b in zip(names["frozen"], [w for layer in encoder for w in layer.get_weights()]):
        assert a.tobytes() == b.tobytes()
    assert model.get_layer("enc_bn1").get_weights()[2].any()        # its moving mean was learnt in step 1
