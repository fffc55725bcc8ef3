using System.Text;

namespace Hive.Policy.Fs;

/// <summary>The question a rename asks of the rules: does moving a subtree change what they say about anything in it?</summary>
public sealed partial class AclPolicy
{
    /// <summary>
    /// How many (state, state) pairs <see cref="DecidesAlike"/> explores before it gives the
    /// conservative answer "they may differ". Real rule sets need a few dozen.
    /// </summary>
    private const int MaxExplored = 20_000;

    private const byte TrackStart = 0, TrackSlash = 1, TrackDot = 2, TrackDotDot = 3, TrackName = 4, TrackDead = 255;

    /// <summary>
    /// True when every path at or beneath <paramref name="from"/> is decided exactly like the same
    /// relative path beneath <paramref name="to"/> (<c>from + r</c> and <c>to + r</c> for every
    /// normalized suffix <c>r</c>, the empty one included). A rename of a directory from one to the
    /// other then changes no decision; otherwise <paramref name="example"/> names a suffix whose
    /// decision differs (null when the answer is only conservative).
    /// </summary>
    /// <remarks>
    /// Exact: every rule is a regular language over characters (<see cref="GlobAutomaton"/>), so the
    /// decision for <c>from + r</c> is a function of the states the rules' automata reach after
    /// reading <c>from</c> and then <c>r</c>. The check walks both sides in lockstep — the subset
    /// construction of the union of the rules' automata, one copy primed with <paramref name="from"/>
    /// and one with <paramref name="to"/> — together with a small automaton that admits only
    /// normalized suffixes (no empty, "." or ".." segments, no trailing slash). It compares the
    /// decision wherever a suffix can end, and stops early along any branch where both sides reach
    /// the same states (the same future). Characters the rules never name literally all behave
    /// alike, so one stands for them all. If the walk grows beyond <see cref="MaxExplored"/> pairs
    /// the answer is "may differ": conservative, never permissive.
    /// </remarks>
    public bool DecidesAlike(string from, string to, out string? example)
    {
        example = null;
        if (!IsNormalized(from) || !IsNormalized(to) || from == "/" || to == "/")
        {
            return false;
        }

        if (from == to)
        {
            return true;
        }

        // Rules that match nothing at or beneath either path play no part.
        var slots = new List<(GlobAutomaton Automaton, (int, int, int, int, int) Specificity, Access Access, int Offset)>();
        var startFrom = new List<int>();
        var startTo = new List<int>();
        var offset = 0;
        foreach (var (glob, access, _) in _rules)
        {
            var automaton = glob.Automaton;
            var a = Run(automaton, from);
            var b = Run(automaton, to);
            if (a.Count == 0 && b.Count == 0)
            {
                continue;
            }

            slots.Add((automaton, glob.Specificity, access, offset));
            startFrom.AddRange(a.Select(s => s + offset));
            startTo.AddRange(b.Select(s => s + offset));
            offset += automaton.StateCount;
        }

        var slotOf = new int[offset];
        for (var i = 0; i < slots.Count; i++)
        {
            Array.Fill(slotOf, i, slots[i].Offset, slots[i].Automaton.StateCount);
        }

        var alphabet = Alphabet(slots.SelectMany(s => s.Automaton.Literals));
        int[] Sorted(IEnumerable<int> states) => [.. states.Distinct().Order()];

        int[] Step(int[] states, char c)
        {
            var next = new HashSet<int>();
            var local = new HashSet<int>();
            foreach (var g in states)
            {
                var (automaton, _, _, o) = slots[slotOf[g]];
                local.Clear();
                automaton.Step(g - o, c, local);
                foreach (var s in local)
                {
                    next.Add(s + o);
                }
            }

            return Sorted(next);
        }

        Access Label(int[] states)
        {
            var matched = new SortedSet<int>();
            foreach (var g in states)
            {
                var (automaton, _, _, o) = slots[slotOf[g]];
                if (automaton.Accepting[g - o])
                {
                    matched.Add(slotOf[g]);
                }
            }

            // As Decide: the most specific matching rule, the later of equally specific ones; none = deny.
            int? best = null;
            foreach (var slot in matched)
            {
                if (best is null || slots[slot].Specificity.CompareTo(slots[best.Value].Specificity) >= 0)
                {
                    best = slot;
                }
            }

            return best is { } b ? slots[b].Access : Access.Deny;
        }

        var first = (From: Sorted(startFrom), To: Sorted(startTo), Track: TrackStart, Parent: -1, Via: '\0');
        if (first.From.AsSpan().SequenceEqual(first.To))
        {
            return true;
        }

        var nodes = new List<(int[] From, int[] To, byte Track, int Parent, char Via)> { first };
        var seen = new HashSet<string>(StringComparer.Ordinal) { Key(first.From, first.To, first.Track) };
        for (var n = 0; n < nodes.Count; n++)
        {
            var node = nodes[n];
            if (node.Track is TrackStart or TrackName && Label(node.From) != Label(node.To))
            {
                example = Suffix(nodes, n);
                return false;
            }

            foreach (var c in alphabet)
            {
                var track = Track(node.Track, c);
                if (track == TrackDead)
                {
                    continue;
                }

                var a = Step(node.From, c);
                var b = Step(node.To, c);
                if (a.AsSpan().SequenceEqual(b))
                {
                    continue; // the same states on both sides (none included): the same decisions from here on
                }

                if (seen.Add(Key(a, b, track)))
                {
                    if (nodes.Count >= MaxExplored)
                    {
                        return false;
                    }

                    nodes.Add((a, b, track, n, c));
                }
            }
        }

        return true;
    }

    /// <summary>The states an automaton is in after reading <paramref name="path"/> from its start.</summary>
    private static HashSet<int> Run(GlobAutomaton automaton, string path)
    {
        var states = new HashSet<int>(automaton.Start);
        foreach (var c in path)
        {
            var next = new HashSet<int>();
            foreach (var s in states)
            {
                automaton.Step(s, c, next);
            }

            states = next;
            if (states.Count == 0)
            {
                break;
            }
        }

        return states;
    }

    /// <summary>'/', '.', every literal the rules name, and one character that stands for all others.</summary>
    private static char[] Alphabet(IEnumerable<char> literals)
    {
        var set = new HashSet<char>(literals) { '/', '.' };
        var other = "xyzqXYZQ0123456789_-~".FirstOrDefault(c => !set.Contains(c));
        for (var c = (char)0x100; other == '\0'; c++)
        {
            other = set.Contains(c) ? '\0' : c;
        }

        set.Add(other);
        return [.. set.Order()];
    }

    /// <summary>A tiny automaton that accepts exactly the normalized suffixes: "" or ("/" name)+ with names other than "." and "..".</summary>
    private static byte Track(byte state, char c) => (state, c) switch
    {
        (TrackStart, '/') => TrackSlash,
        (TrackStart, _) => TrackDead,
        (TrackSlash, '/') => TrackDead,
        (TrackSlash, '.') => TrackDot,
        (TrackDot, '.') => TrackDotDot,
        (TrackDot or TrackDotDot, '/') => TrackDead,
        (TrackName, '/') => TrackSlash,
        (TrackDead, _) => TrackDead,
        _ => TrackName,
    };

    private static string Key(int[] from, int[] to, byte track) =>
        string.Join(',', from) + "|" + string.Join(',', to) + "|" + track.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string Suffix(List<(int[] From, int[] To, byte Track, int Parent, char Via)> nodes, int n)
    {
        var chars = new StringBuilder();
        for (; nodes[n].Parent >= 0; n = nodes[n].Parent)
        {
            chars.Insert(0, nodes[n].Via);
        }

        return chars.ToString();
    }
}
