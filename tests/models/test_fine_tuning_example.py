"""The fine-tuning example (proposed for the README): it runs as pasted, the frozen encoder stays bit-identical,
and fine-tuning the decoder on 16 masks raises the mIoU on the new images.

EXAMPLE is the program as a reader would paste it; the test runs it in a fresh namespace and reads what it
printed and the names it left behind.
"""
import re

EXAMPLE = '''
import numpy as np
import tinyseg as keras
from tinyseg import layers

keras.utils.set_random_seed(0)
clean = dict(size=32, texture=0.0, min_contrast=0.5, scale=(0.3, 0.5), noise=0.02)    # plain shapes


def shapes(n, seed, noise):
    """Images and binary masks (1 where a shape is) from the built-in shapes data set."""
    (x, y), _ = keras.datasets.load_shapes(n_train=n, n_val=0, seed=seed, **{**clean, "noise": noise})
    return x, (y > 0).astype("uint8")


def small_unet(num_classes=2):
    inputs = keras.Input((32, 32, 3))
    e1 = layers.Conv2D(16, 3, padding="same", activation="relu", name="enc_conv1")(inputs)
    e1 = layers.BatchNormalization(name="enc_bn1")(e1)
    e2 = layers.MaxPooling2D(2, name="enc_pool")(e1)
    e2 = layers.Conv2D(32, 3, padding="same", activation="relu", name="enc_conv2")(e2)
    d = layers.UpSampling2D(2, name="dec_up")(e2)
    d = layers.Concatenate(name="dec_skip")([d, e1])
    d = layers.Conv2D(16, 3, padding="same", activation="relu", name="dec_conv")(d)
    outputs = layers.Conv2D(num_classes, 1, activation="softmax", name="dec_head")(d)
    return keras.Model(inputs, outputs)


# 1. Train the whole model on 256 clean images.
x, y = shapes(256, seed=0, noise=0.02)
model = small_unet()
model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["mean_iou"])
model.fit(x, y, batch_size=16, epochs=4, verbose=0)

# 2. New, noisy images with only 16 masks: freeze the encoder, then compile again (as Keras asks).
x_few, y_few = shapes(16, seed=1, noise=0.25)
x_new, y_new = shapes(64, seed=2, noise=0.25)
encoder = [layer for layer in model.layers if layer.name.startswith("enc_")]
for layer in encoder:
    layer.trainable = False
model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["mean_iou"])
model.summary()                                   # Trainable params: 6,962  Non-trainable params: 5,152
before = model.evaluate(x_new, y_new, verbose=0)[1]

# 3. Fine-tune the decoder on the 16 masks. The frozen encoder (its BatchNormalization's moving mean and
#    variance too: a frozen BatchNormalization runs in inference mode) stays exactly as it was.
frozen = [w.copy() for layer in encoder for w in layer.get_weights()]
model.fit(x_few, y_few, batch_size=8, epochs=10, verbose=0)
after = model.evaluate(x_new, y_new, verbose=0)[1]
unchanged = all(np.array_equal(a, b) for a, b in zip(frozen, [w for layer in encoder for w in layer.get_weights()]))
print(f"mIoU on new images: {before:.3f} -> {after:.3f}; encoder unchanged: {unchanged}")
'''


def test_the_fine_tuning_example_runs_and_keeps_the_encoder_frozen(capsys):
    names = {"__name__": "fine_tuning_example"}
    exec(compile(EXAMPLE, "fine_tuning_example.py", "exec"), names)
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
