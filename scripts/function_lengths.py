#!/usr/bin/env python3
"""Lists the longest function bodies in C++ sources (the "functions under 80 lines" goal).

    scripts/function_lengths.py src/repair src/report            # the 15 longest
    scripts/function_lengths.py --over 80 src/repair src/report  # only those over 80 lines; exit 1 if any

A brace-counting scan, not a parser: comments, string and character literals (raw strings
included) are blanked first, then every `{` is classified by the text before it. A body opened
after `)` (optionally followed by const, noexcept, override, a trailing return type or a
constructor's initializer list) at namespace or class level is a function; namespace, class,
struct, union, enum and extern "C" blocks are descended into; everything else (initializers,
lambdas, control blocks) belongs to the function around it. The length counted is the lines from
the one holding the signature's `(`... to the closing `}`, inclusive: what a reader has to hold.
"""
import argparse
import os
import re
import sys

CONTAINER = re.compile(r'\b(namespace|class|struct|union|enum)\b[^;{}()]*$|extern\s+"C"\s*$')


def blank_literals(text):
    """Replaces comments and literal contents with spaces, keeping newlines (so lines still count)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i)); i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j])); i = j
        elif c == 'R' and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == '_')):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c); i += 1; continue
            end = text.find(')' + m.group(1) + '"', i)
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + re.sub(r'[^\n]', ' ', text[i + 2:j])); i = j
        elif c in '"\'':
            if c == "'" and i > 0 and text[i - 1].isalnum():  # digit separator 1'000
                out.append(' '); i += 1; continue
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == '\\' else 1
            out.append(c + ' ' * (j - i - 1) + c); i = j + 1
        else:
            out.append(c); i += 1
    return ''.join(out)


def signature_name(head):
    """The function's name and the offset of its parameter list: the identifier before the first `(`."""
    k = head.find('(')
    if k < 0:
        return '?', len(head)
    m = re.search(r'(operator\s*\S+?|[~\w:]+(?:<[^()]*>)?)\s*$', head[:k])
    return (m.group(1) if m else '?'), k


def functions(path):
    text = blank_literals(open(path, encoding='utf-8', errors='replace').read())
    results = []
    stack = []  # 'container', 'init', 'init-in-signature', 'block' or ('function', start_offset, name)
    last_stop = 0  # where the text before the next `{` starts (after the last ';', '{' or '}')
    i = 0
    while i < len(text):
        ch = text[i]
        in_function = any(isinstance(s, tuple) for s in stack)
        if ch == '{':
            if in_function:
                stack.append('block')
                last_stop = i + 1
            else:
                head = text[last_stop:i]
                stripped = head.strip()
                if CONTAINER.search(stripped) or not stripped:
                    stack.append('container')
                    last_stop = i + 1
                elif re.search(r'\)\s*(const|noexcept|override|final|mutable|&|&&|->\s*[\w:<>,\s*&]+|\s)*$', head) \
                        or re.search(r'\)\s*:\s*[\s\S]*\)\s*$', head) or re.search(r'\}\s*$', head):
                    name, paren = signature_name(head)
                    stack.append(('function', last_stop + paren, name))
                    last_stop = i + 1
                elif stripped.endswith('=') or not re.search(r'\)\s*:', head):
                    stack.append('init')
                    last_stop = i + 1
                else:
                    # A brace initializer in a constructor's initializer list (`: x_{x}`): the
                    # signature goes on past it, so the text before it is kept.
                    stack.append('init-in-signature')
        elif ch == '}':
            top = stack.pop() if stack else 'container'
            if isinstance(top, tuple):
                start_line = text.count('\n', 0, top[1]) + 1
                end_line = text.count('\n', 0, i) + 1
                results.append((end_line - start_line + 1, path, start_line, top[2]))
            if top != 'init-in-signature' and not any(isinstance(s, tuple) for s in stack):
                last_stop = i + 1
        elif ch == ';' and not in_function:
            last_stop = i + 1
        i += 1
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('paths', nargs='+')
    parser.add_argument('--over', type=int, help='list only functions longer than this; exit 1 when any')
    parser.add_argument('--top', type=int, default=15)
    args = parser.parse_args()
    files = []
    for p in args.paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                files += [os.path.join(root, f) for f in names if f.endswith(('.cpp', '.h', '.cc', '.hpp'))]
        else:
            files.append(p)
    found = sorted((f for path in sorted(files) for f in functions(path)), key=lambda r: (-r[0], r[1], r[2]))
    shown = [f for f in found if args.over is None or f[0] > args.over]
    if args.over is None:
        shown = shown[:args.top]
    for lines, path, line, name in shown:
        print(f'{lines:5d}  {path}:{line}  {name}')
    print(f'{len(found)} functions in {len(files)} files; longest {found[0][0] if found else 0} lines'
          + (f'; {len(shown)} over {args.over}' if args.over is not None else ''))
    return 1 if args.over is not None and shown else 0


if __name__ == '__main__':
    sys.exit(main())
