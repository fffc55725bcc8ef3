namespace Hive.Policy.Fs;

/// <summary>
/// A <see cref="PathGlob"/> as a nondeterministic automaton over characters: the same language as
/// the glob's regular expression, but its states can be inspected. That lets
/// <see cref="AclPolicy.DecidesAlike"/> ask what a rule still matches after a given prefix (the
/// rule's "residual" beneath a directory) — something a compiled <see cref="System.Text.RegularExpressions.Regex"/>
/// cannot answer. Only renames need it, so it is built on first use.
/// </summary>
/// <remarks>
/// Construction follows the glob's segments (states are numbered as they are made):
/// <code>
///   literal segment "a?c"   ─/→ ─a→ ─[^/]→ ─c→                  (accepting at the end if last)
///   "*" inside a segment    ─ε→ (s) ⟲[^/]                        (zero or more non-slash characters)
///   "**" in the middle      (cur) ─/→ ─[^/]→ (b) ⟲[^/], (b) ─ε→ (cur)   i.e. (/[^/]+)*
///   "**" at the end         (cur, accepting) ─/→ (n, accepting) ⟲any     i.e. (/.*)?
/// </code>
/// </remarks>
internal sealed class GlobAutomaton
{
    internal const byte Literal = 0;
    internal const byte NotSlash = 1;
    internal const byte AnyChar = 2;

    private readonly List<(byte Kind, char C, int To)>[] _edges;
    private readonly int[][] _closure;

    private GlobAutomaton(List<(byte, char, int)>[] edges, List<int>[] epsilon, bool[] accepting, HashSet<char> literals)
    {
        _edges = edges;
        Accepting = accepting;
        Literals = literals;
        _closure = new int[edges.Length][];
        for (var s = 0; s < edges.Length; s++)
        {
            var seen = new SortedSet<int> { s };
            var stack = new Stack<int>([s]);
            while (stack.TryPop(out var n))
            {
                foreach (var next in epsilon[n])
                {
                    if (seen.Add(next))
                    {
                        stack.Push(next);
                    }
                }
            }

            _closure[s] = [.. seen];
        }
    }

    public int StateCount => _edges.Length;

    public bool[] Accepting { get; }

    /// <summary>Characters the pattern names literally (other than '/'); every other character behaves alike.</summary>
    public HashSet<char> Literals { get; }

    /// <summary>The states reachable from the start without reading anything.</summary>
    public IEnumerable<int> Start => _closure[0];

    /// <summary>Adds to <paramref name="into"/> every state reachable from <paramref name="state"/> by reading <paramref name="c"/>.</summary>
    public void Step(int state, char c, HashSet<int> into)
    {
        foreach (var (kind, literal, to) in _edges[state])
        {
            var matches = kind switch
            {
                Literal => literal == c,
                NotSlash => c != '/',
                _ => true,
            };
            if (matches)
            {
                into.UnionWith(_closure[to]);
            }
        }
    }

    /// <summary>Builds the automaton of a pattern <see cref="PathGlob"/> has already validated.</summary>
    public static GlobAutomaton Build(string pattern)
    {
        var edges = new List<List<(byte, char, int)>>();
        var epsilon = new List<List<int>>();
        var accepting = new List<bool>();
        var literals = new HashSet<char>();
        int New()
        {
            edges.Add([]);
            epsilon.Add([]);
            accepting.Add(false);
            return edges.Count - 1;
        }

        var current = New();
        if (pattern == "/")
        {
            var root = New();
            edges[current].Add((Literal, '/', root));
            accepting[root] = true;
            return new GlobAutomaton([.. edges], [.. epsilon], [.. accepting], literals);
        }

        var segments = pattern.Split('/')[1..];
        for (var i = 0; i < segments.Length; i++)
        {
            var last = i == segments.Length - 1;
            if (segments[i] == "**")
            {
                if (last)
                {
                    var rest = New();
                    edges[current].Add((Literal, '/', rest));
                    edges[rest].Add((AnyChar, '\0', rest));
                    accepting[current] = true;
                    accepting[rest] = true;
                }
                else
                {
                    var slash = New();
                    var name = New();
                    edges[current].Add((Literal, '/', slash));
                    edges[slash].Add((NotSlash, '\0', name));
                    edges[name].Add((NotSlash, '\0', name));
                    epsilon[name].Add(current);
                }

                continue;
            }

            var segment = New();
            edges[current].Add((Literal, '/', segment));
            current = segment;
            foreach (var c in segments[i])
            {
                var next = New();
                switch (c)
                {
                    case '*':
                        epsilon[current].Add(next);
                        edges[next].Add((NotSlash, '\0', next));
                        break;
                    case '?':
                        edges[current].Add((NotSlash, '\0', next));
                        break;
                    default:
                        edges[current].Add((Literal, c, next));
                        literals.Add(c);
                        break;
                }

                current = next;
            }

            if (last)
            {
                accepting[current] = true;
            }
        }

        return new GlobAutomaton([.. edges], [.. epsilon], [.. accepting], literals);
    }
}
