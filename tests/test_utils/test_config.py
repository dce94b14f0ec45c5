"""mmrsfusion.utils.load_config: cfg-options merged, default scope set and
custom_imports imported, as tools/train.py would."""
import sys

from mmengine.registry import DefaultScope

from mmrsfusion.utils import load_config


def test_load_config(tmp_path, monkeypatch):
    (tmp_path / '_probe_plugin.py').write_text('LOADED = True\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, '_probe_plugin', raising=False)
    config = tmp_path / 'cfg.py'
    config.write_text(
        "custom_imports = dict(imports=['_probe_plugin'], "
        "allow_failed_imports=False)\n"
        "model = dict(type='X', depth=2)\n")
    cfg = load_config(str(config), {'model.depth': 5})
    assert cfg.model.depth == 5 and cfg.model.type == 'X'
    assert sys.modules['_probe_plugin'].LOADED
    assert DefaultScope.get_current_instance().scope_name == 'mmseg'
