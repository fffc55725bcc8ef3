using System.Collections;

namespace Hive.Agent;

/// <summary>
/// The environment commands see: the container's environment without the agent's own plumbing
/// (its loader path and runtime knobs), plus per-call additions.
/// </summary>
internal sealed class AgentEnvironment
{
    private readonly SortedDictionary<string, string> _base = new(StringComparer.Ordinal);

    public AgentEnvironment()
    {
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            var key = (string)entry.Key;
            if (!IsAgentOnly(key))
            {
                _base[key] = (string?)entry.Value ?? string.Empty;
            }
        }

        _base.TryAdd("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        _base.TryAdd("HOME", "/root");
    }

    public static bool IsAgentOnly(string key) =>
        key is "LD_LIBRARY_PATH" or "LD_PRELOAD"
        || key.StartsWith("DOTNET_", StringComparison.Ordinal)
        || key.StartsWith("HIVE_AGENT_", StringComparison.Ordinal)
        || key.StartsWith("ASPNETCORE_", StringComparison.Ordinal);

    public IReadOnlyList<string> ForChild(IDictionary<string, string> extra)
    {
        var merged = new SortedDictionary<string, string>(_base, StringComparer.Ordinal);
        foreach (var (key, value) in extra)
        {
            if (key.Length == 0 || key.Contains('=', StringComparison.Ordinal) || key.Contains('\0', StringComparison.Ordinal) || value.Contains('\0', StringComparison.Ordinal))
            {
                throw new Hive.Wire.RpcException(Hive.Wire.StatusCode.InvalidArgument, $"invalid environment variable '{key}'");
            }

            merged[key] = value;
        }

        return merged.Select(kv => kv.Key + "=" + kv.Value).ToList();
    }
}
