"""Generated blocks in README files, so that every number in them comes from a command.

A block is delimited by ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
lines; the command that owns it rewrites everything in between, and nothing
between the markers is hand-written.
"""

import glob
import os
import re

README = 'README.md'
_BLOCK = re.compile(r'<!-- generated:(\w+) -->\n(.*?)<!-- /generated:\1 -->', re.DOTALL)
# What prose copies from a table: "73.41 ± 0.68" and "p = 0.012" (tables write "p=0.012",
# and the headline table a bare p in its own column).
_MEAN_STD = re.compile(r'\d+\.\d+ ± \d+\.\d+')
_P_IN_PROSE = re.compile(r'\bp ?= ?(\d[\d.e-]*\d)')
_P_CELL = re.compile(r'\| (\d\.\d+(?:e-\d+)?) (?=\|)')


def replace_block(path: str, name: str, text: str) -> bool:
  """Replaces block ``name`` of the file at ``path`` with ``text``; False if it has no such block."""
  if not os.path.exists(path):
    return False
  with open(path, encoding='utf-8') as f:
    content = f.read()
  pattern = re.compile(
    rf'(<!-- generated:{re.escape(name)} -->\n).*?(<!-- /generated:{re.escape(name)} -->)',
    re.DOTALL,
  )
  if not pattern.search(content):
    return False
  new = pattern.sub(lambda m: m.group(1) + text.rstrip('\n') + '\n' + m.group(2), content, count=1)
  with open(path, 'w', encoding='utf-8') as f:
    f.write(new)
  return True


def stale_quotes(readme: str, tables_dir: str) -> list[str]:
  """The means ± std and Welch p values that the prose of ``readme`` (outside its generated
  blocks) quotes and that no generated table holds: neither a ``*.md`` table of
  ``tables_dir`` nor a block of ``readme``.

  The prose around the blocks is hand-written and cites their rows. When a seed lands, the
  tables are rewritten and a number copied from them goes stale without a sound; this finds
  it (``python -m experiments.run`` prints what it finds, and a test keeps the committed
  results README clean).
  """
  with open(readme, encoding='utf-8') as f:
    text = f.read()
  tables = [m.group(2) for m in _BLOCK.finditer(text)]
  for path in sorted(glob.glob(os.path.join(tables_dir, '*.md'))):
    if os.path.abspath(path) != os.path.abspath(readme):
      with open(path, encoding='utf-8') as f:
        tables.append(f.read())
  held = '\n'.join(tables)
  means = set(_MEAN_STD.findall(held))
  p_values = set(_P_IN_PROSE.findall(held)) | set(_P_CELL.findall(held))
  prose = _BLOCK.sub('', text)
  stale = [m for m in _MEAN_STD.findall(prose) if m not in means]
  stale += [f'p = {p}' for p in _P_IN_PROSE.findall(prose) if p not in p_values]
  return stale
