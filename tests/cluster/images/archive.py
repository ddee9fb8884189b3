#!/usr/bin/env python3
"""Write a docker-archive image (what `docker save` writes, what
`ctr images import` reads) from layer tars, without a registry or a daemon.

  archive.py OUT.tar NAME CONFIG.json LAYER.tar...

CONFIG.json holds the image's "config" (Entrypoint, Cmd, User, Env, ...);
the layers are uncompressed tars, bottom first. Deterministic: the same
inputs give the same bytes (no timestamps but the epoch)."""
import hashlib
import io
import json
import sys
import tarfile


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def add_bytes(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def main():
    if len(sys.argv) < 5:
        sys.exit("usage: archive.py OUT.tar NAME CONFIG.json LAYER.tar...")
    out, name, config_path, layers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    with open(config_path) as f:
        container_config = json.load(f)
    digests = [sha256_file(layer) for layer in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in digests]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "tests/cluster/images.sh"}
                    for _ in layers],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [name],
                 "Layers": [d + "/layer.tar" for d in digests]}]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, config_name, config_bytes)
        for digest, layer in zip(digests, layers):
            info = tar.gettarinfo(layer, arcname=digest + "/layer.tar")
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with open(layer, "rb") as f:
                tar.addfile(info, f)
        add_bytes(tar, "manifest.json", json.dumps(manifest).encode())


if __name__ == "__main__":
    main()
