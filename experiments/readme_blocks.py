"""Generated blocks in README files, so that every number in them comes from a command.

A block is delimited by ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``
lines; the command that owns it rewrites everything in between, and nothing
between the markers is hand-written.
"""

import os
import re

README = 'README.md'


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
