namespace Hive.Policy.Fs;

/// <summary>One rule as configured: a path pattern and what it allows.</summary>
public sealed record AclRule(string Path, Access Access);

/// <summary>
/// The access rules of one mount. The most specific matching rule decides (see
/// <see cref="PathGlob.Specificity"/>); between equally specific rules the later one wins; a path
/// no rule covers is denied. Paths must be absolute and normalized (the caller resolves symlinks
/// and <c>..</c> first, so decisions are always about the real target).
/// </summary>
public sealed partial class AclPolicy
{
    private readonly (PathGlob Glob, Access Access, int Index)[] _rules;

    private AclPolicy((PathGlob, Access, int)[] rules) => _rules = rules;

    public IReadOnlyList<AclRule> Rules => _rules.Select(r => new AclRule(r.Glob.Pattern, r.Access)).ToList();

    /// <summary>Omitted ACLs mean the whole mount is read-write.</summary>
    public static AclPolicy Default(string mount) => Parse(mount, [new AclRule(mount == "/" ? "/**" : mount + "/**", Access.ReadWrite)]);

    /// <summary>Compiles rules for a mount; every problem is reported at once. Rules must lie inside the mount.</summary>
    public static AclPolicy Parse(string mount, IReadOnlyList<AclRule> rules)
    {
        var errors = new List<string>();
        var compiled = new List<(PathGlob, Access, int)>();
        for (var i = 0; i < rules.Count; i++)
        {
            var rule = rules[i];
            if (!PathGlob.TryParse(rule.Path, out var glob, out var error))
            {
                errors.Add($"acls[{i}]: {error}");
                continue;
            }

            if (mount != "/" && rule.Path != mount && !rule.Path.StartsWith(mount + "/", StringComparison.Ordinal))
            {
                errors.Add($"acls[{i}]: '{rule.Path}' is outside the mount '{mount}'");
                continue;
            }

            compiled.Add((glob!, rule.Access, i));
        }

        if (errors.Count > 0)
        {
            throw new AclException(string.Join("; ", errors));
        }

        return new AclPolicy(compiled.ToArray());
    }

    /// <summary>The access for <paramref name="path"/> (absolute, normalized).</summary>
    public Access Decide(string path)
    {
        if (!IsNormalized(path))
        {
            return Access.Deny; // fail closed: never guess what an unnormalized path means
        }

        (PathGlob Glob, Access Access, int Index)? best = null;
        foreach (var rule in _rules)
        {
            if (!rule.Glob.IsMatch(path))
            {
                continue;
            }

            if (best is null || rule.Glob.Specificity.CompareTo(best.Value.Glob.Specificity) >= 0)
            {
                best = rule; // ">=": the later of equally specific rules wins
            }
        }

        return best?.Access ?? Access.Deny;
    }

    /// <summary>Absolute, no NUL, no empty, "." or ".." segment, no trailing slash (but "/"). Asked on every file operation: one pass, no allocation.</summary>
    public static bool IsNormalized(string path)
    {
        if (path.Length == 0 || path[0] != '/')
        {
            return false;
        }

        var segment = 1;
        for (var i = 1; i <= path.Length; i++)
        {
            if (i < path.Length && path[i] != '/')
            {
                if (path[i] == '\0')
                {
                    return false;
                }

                continue;
            }

            var length = i - segment;
            if ((length == 0 && path.Length > 1) || (length == 1 && path[segment] == '.') || (length == 2 && path[segment] == '.' && path[segment + 1] == '.'))
            {
                return false;
            }

            segment = i + 1;
        }

        return true;
    }
}

public sealed class AclException(string message) : Exception(message);
