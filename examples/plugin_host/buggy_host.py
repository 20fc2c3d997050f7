"""``BuggyPluginHost``: the plugin host with one real OOM bug, left in on purpose.

The walkthrough in ``examples/README.md`` finds it with ``oomfuzz sweep``,
replays it, minimizes it and fixes it. Do not copy this ``load``.
"""

from __future__ import annotations

from plugin_host import Plugin, PluginError, PluginHost


class BuggyPluginHost(PluginHost):
    """Registers a plugin *before* instantiating it, and never undoes that on failure."""

    def load(self, name: str, wat: str) -> None:
        if name in self.plugins:
            raise PluginError(f"plugin {name!r} is already loaded")
        if self.used >= self.quota:
            raise PluginError(f"quota of {self.quota} plugins reached")
        linker = self.linker()
        module = self.module(name, wat)
        store = self._checkout()
        plugin = Plugin(name, store, None)  # type: ignore[arg-type]
        self.plugins[name] = plugin  # the bug: registered before it can fail
        plugin.instance = linker.instantiate(store, module)
        self.used += 1
