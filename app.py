"""VLE Explorer: look inside Variable Length Embeddings (Chiu, Gu and Zhou, 2023).

The Hugging Face Space's entry point: `python app.py` serves the app on the default checkpoint.
The app is the `explorer` package (its __init__ maps its files); the model is `vle_core`.

Settings (environment variables): VLE_CHECKPOINTS (folder of checkpoint folders, default
./checkpoints), VLE_DEFAULT_CHECKPOINT (default vanilla-natural, else the first folder),
VLE_CACHE_DIR (the encodings cache, default ./.cache/encodings), VLE_CACHE_MB (its bound; 0 turns
it off), VLE_ENCODE_WORKER (1: encode in a niced child process, not in the server's; default 0). The
limits on uploads, sessions and the queue are in explorer/settings.py.
"""

from explorer import build_demo, launch_options, queue, settings, tokens_tab, worker

demo = queue(build_demo())
worker.start()  # the encode worker imports torch now, not at the first user's encode
tokens_tab.warm_default_example()  # the page opens on this example's tokens, from the cache

if __name__ == "__main__":
    demo.launch(state_session_capacity=settings.MAX_SESSIONS, **launch_options())
