"""The documentation holds together: every relative link in README.md,
docs/**/*.md and configs/**/README.md points at a file or folder of the
repository (and, into a markdown file, at one of its headings' anchors, as
GitHub derives them); README.md stays a short front door that starts with
the two commands."""
import glob
import os.path as osp
import re
from typing import List, Set

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FRONT_DOOR_COMMANDS = [
    'bash tools/setup_env.sh demo',
    'bash tools/setup_env.sh test',
]
README_MAX_LINES = 200

FENCE = re.compile(r'^(```|~~~).*?^\1[^\n]*$', re.M | re.S)
INLINE_CODE = re.compile(r'`[^`\n]*`')
MD_LINK = re.compile(r'!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)')
HTML_LINK = re.compile(r'<a\s[^>]*href="([^"]+)"', re.I)
HEADING = re.compile(r'^#{1,6}\s+(.*?)\s*#*\s*$', re.M)


def doc_files() -> List[str]:
    """README.md, docs/**/*.md and configs/**/README.md, repo-relative."""
    files = ['README.md']
    files += glob.glob('docs/**/*.md', root_dir=ROOT, recursive=True)
    files += glob.glob('configs/**/README.md', root_dir=ROOT, recursive=True)
    return sorted(set(files))


def strip_code(text: str) -> str:
    """The text without fenced blocks and inline code spans, where neither
    links nor headings count."""
    return INLINE_CODE.sub('', FENCE.sub('', text))


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: markup and punctuation dropped, lower
    case, spaces to hyphens (``Trainable means `requires_grad` `` ->
    ``trainable-means-requires_grad``)."""
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # link text only
    text = re.sub(r'<[^>]+>', '', text).strip().lower()
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def anchors(text: str) -> Set[str]:
    """Every heading anchor of a markdown text, duplicates numbered as
    GitHub numbers them (``name``, ``name-1``, ...)."""
    found, seen = set(), {}
    for heading in HEADING.findall(FENCE.sub('', text)):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f'{base}-{n}')
    return found


def links(text: str) -> List[str]:
    """Link targets of a markdown text (markdown and HTML), outside code."""
    text = strip_code(text)
    return MD_LINK.findall(text) + HTML_LINK.findall(text)


def broken_links(path: str) -> List[str]:
    """The relative links of ``path`` (a markdown file) that do not
    resolve, each as ``target: why``."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    broken = []
    for target in links(text):
        if re.match(r'^[a-z][a-z0-9+.-]*:', target, re.I):
            continue  # http(s):, mailto:, ...: not checked here
        file_part, _, anchor = target.partition('#')
        dest = (osp.normpath(osp.join(osp.dirname(path), file_part))
                if file_part else path)
        if not osp.exists(dest):
            broken.append(f'{target}: no file {dest}')
            continue
        if anchor and dest.endswith('.md'):
            with open(dest, encoding='utf-8') as f:
                if anchor not in anchors(f.read()):
                    broken.append(f'{target}: no heading #{anchor} in {dest}')
    return broken


def test_the_docs_exist():
    files = doc_files()
    assert 'docs/index.md' in files
    for method in ('mobanet', 'mfnet', 'sgma', 'baselines'):
        assert f'configs/{method}/README.md' in files


@pytest.mark.parametrize('doc', doc_files())
def test_relative_links_resolve(doc):
    assert broken_links(osp.join(ROOT, doc)) == []


def test_every_docs_page_is_linked_from_the_index():
    with open(osp.join(ROOT, 'docs', 'index.md'), encoding='utf-8') as f:
        linked = {osp.normpath(t.partition('#')[0]) for t in links(f.read())}
    pages = {
        osp.basename(p)
        for p in glob.glob(osp.join(ROOT, 'docs', '*.md'))
    }
    assert pages - {'index.md'} <= linked


def test_readme_is_a_front_door_starting_with_the_two_commands():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        lines = f.read().splitlines()
    assert len(lines) < README_MAX_LINES
    content = [ln for ln in lines if ln.strip()]
    # the title, then a bash block whose lines are exactly the two commands
    assert content[0].startswith('# ')
    assert content[1] == '```bash'
    commands = [ln.split('#')[0].strip() for ln in content[2:4]]
    assert commands == FRONT_DOOR_COMMANDS
    assert content[4] == '```'


def test_no_process_words():
    words = ('filled in by the lead', 'the lead quotes', 'reference/isprs.md',
             'Keep this marker')
    for doc in doc_files():
        with open(osp.join(ROOT, doc), encoding='utf-8') as f:
            text = f.read()
        for word in words:
            assert word not in text, f'{doc}: {word!r}'


def test_the_checker_catches_broken_links(tmp_path):
    """Against a file with one good and three bad links; links inside code
    do not count."""
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub' / 'other.md').write_text(
        '# Other page\n\n## Trainable means `requires_grad`\n\n'
        '```bash\n# not a heading\n```\n')
    page = tmp_path / 'page.md'
    page.write_text(
        '# Page\n\n## Same\n\n## Same\n\n'
        '[ok](sub/other.md#trainable-means-requires_grad) '
        '[ok](sub/) [ok](#same-1) [ok](https://example.org/x.md) '
        '<a href="sub/other.md">ok</a>\n'
        '[bad file](sub/missing.md) [bad anchor](sub/other.md#nope) '
        '[bad local](#same-2) [not a heading](sub/other.md#not-a-heading)\n'
        '`[in code](nowhere.md)`\n\n```\n[in a block](nowhere.md)\n```\n')
    broken = broken_links(str(page))
    assert [b.split(':')[0] for b in broken] == [
        'sub/missing.md', 'sub/other.md#nope', '#same-2',
        'sub/other.md#not-a-heading'
    ]


def test_slug_follows_github():
    assert slug("Against the authors' code") == 'against-the-authors-code'
    assert slug('Trainable means `requires_grad`') == \
        'trainable-means-requires_grad'
    assert slug('ISPRS Vaihingen and Potsdam') == 'isprs-vaihingen-and-potsdam'
    assert slug('Scene mapping: apply a model to a new area') == \
        'scene-mapping-apply-a-model-to-a-new-area'
