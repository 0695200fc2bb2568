"""The pinned CLI cache: the vendors' agent CLIs, fetched once from npm, verified, kept read-only.

Both CLIs ship their native binary in a per-platform npm package, named by the wrapper
package's `optionalDependencies` for that version:

- `claude-code`: `@anthropic-ai/claude-code@V` lists `@anthropic-ai/claude-code-linux-x64: V`
  (also `-linux-x64-musl`, `-linux-arm64[-musl]`, `-darwin-*`, `-win32-*`), whose tarball holds
  `package/claude`, a native ELF.
- `codex`: `@openai/codex@V` lists `@openai/codex-linux-x64: "npm:@openai/codex@V-linux-x64"`, an
  alias to a platform *version* of the same package, whose tarball holds
  `package/vendor/<target triple>/` (`codex-package.json` names the entrypoint, `bin/codex`, a
  static musl binary, beside its `codex-resources/` and `codex-path/`).

Only the platform tarball is fetched: the wrapper is a Node launcher we do not need. Its bytes are
checked against the registry's `dist.integrity` (sha512 SRI) before anything is unpacked. An
install lands in `<root>/<cli>/<version>/<platform>/` (`package/` plus `install.json`: the
tarball, its integrity, the binary's path, sha256 and `--version` output). It is staged in a
scratch folder and renamed into place, under a file lock, so two concurrent installs leave one
complete copy. `latest` is resolved once per UTC day and the answer kept in
`<root>/<cli>/latest.json`, a day -> version map, so every day's resolution stays on record.

The registry is npm's own (`npm_config_registry`, else `registry=` or `@scope:registry=` in
~/.npmrc, else registry.npmjs.org), read with urllib: no Node or npm is needed on the machine,
and the integrity check is ours, done before unpacking.
"""

from pipeline.agents.cli_cache.npm import packument, platform_package, registry_for
from pipeline.agents.cli_cache.specs import (
    CLIS,
    CliCacheError,
    CliSpec,
    Installed,
    file_sha256,
    host_platform,
    spec,
)
from pipeline.agents.cli_cache.store import (
    cached,
    install,
    installed,
    latest_resolutions,
    resolve,
    version_output,
)
from pipeline.config import cli_cache_root

__all__ = [
    "CLIS",
    "CliCacheError",
    "CliSpec",
    "Installed",
    "cached",
    "cli_cache_root",
    "file_sha256",
    "host_platform",
    "install",
    "installed",
    "latest_resolutions",
    "packument",
    "platform_package",
    "registry_for",
    "resolve",
    "spec",
    "version_output",
]
