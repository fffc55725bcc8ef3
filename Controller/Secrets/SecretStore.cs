using Hive.Policy.Net;

namespace Hive.Controller.Secrets;

/// <summary>
/// The host-side secret store: one file per secret in <c>&lt;data&gt;/secrets/</c> (0700 directory,
/// 0600 files), each the JSON form of <see cref="StoredSecret"/> — the value and the hosts it may
/// be sent to. SbxProxy reads the files when a request needs one. Values never leave through the
/// API. A file written before secrets had hosts (a plain value) stays readable to the proxy but is
/// never injected until it is stored again with hosts.
/// </summary>
internal sealed class SecretStore(string dir)
{
    private const UnixFileMode DirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public StoredSecret? Read(string name)
    {
        var path = Path.Combine(dir, name);
        try
        {
            return File.Exists(path) ? StoredSecret.Parse(File.ReadAllText(path)) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Every secret (names matching <paramref name="isName"/>), by name.</summary>
    public IEnumerable<(string Name, DateTime UpdatedAt, StoredSecret Secret)> List(Func<string, bool> isName)
    {
        if (!Directory.Exists(dir))
        {
            yield break;
        }

        foreach (var file in Directory.EnumerateFiles(dir).Select(f => new FileInfo(f)).Where(f => isName(f.Name)).OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            if (Read(file.Name) is { } secret)
            {
                yield return (file.Name, file.LastWriteTimeUtc, secret);
            }
        }
    }

    /// <summary>Stores (atomically, flushed) a value bound to <paramref name="hosts"/>; true when it replaced one.</summary>
    public async Task<bool> WriteAsync(string name, string value, IEnumerable<string> hosts, bool allowHttp, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(dir, DirMode);
        File.SetUnixFileMode(dir, DirMode);
        var temp = Path.Combine(dir, "." + name + ".tmp");
        await using (var file = new FileStream(temp, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
        {
            await file.WriteAsync(System.Text.Encoding.UTF8.GetBytes(StoredSecret.Serialize(value, hosts, allowHttp)), cancellationToken);
            file.Flush(flushToDisk: true);
        }

        var target = Path.Combine(dir, name);
        var existed = File.Exists(target);
        File.Move(temp, target, overwrite: true);
        return existed;
    }

    public bool Delete(string name)
    {
        var path = Path.Combine(dir, name);
        if (!File.Exists(path))
        {
            return false;
        }

        File.Delete(path);
        return true;
    }

    /// <summary>
    /// Every allow rule that injects a secret toward hosts the secret may not be sent to — or a
    /// secret that is not set, or not bound to hosts yet — as one error each (a 400 at create and
    /// PATCH). SbxProxy checks again on every request, since a secret can change afterwards.
    /// </summary>
    public List<string> CheckInjections(EgressPolicy policy)
    {
        var errors = new List<string>();
        foreach (var (rule, name) in policy.SecretUses())
        {
            var at = $"egress.allow[{rule.Index}]";
            var secret = Read(name);
            if (secret is null)
            {
                errors.Add($"{at} injects secret '{name}', which is not set: store it first with the hosts it may be sent to (PUT /api/v1/secrets/{name} {{\"value\": \"...\", \"hosts\": [\"{rule.Host}\"]}})");
            }
            else if (!secret.Bound)
            {
                errors.Add($"{at} injects secret '{name}', which was stored before secrets were bound to hosts: store it again with its hosts (PUT /api/v1/secrets/{name} {{\"hosts\": [\"{rule.Host}\"]}})");
            }
            else if (!secret.Covers(rule.HostPattern))
            {
                errors.Add($"{at} injects secret '{name}' toward '{rule.Host}', where the secret may not be sent (its hosts: {string.Join(", ", secret.Hosts!)}); add the host to the secret or narrow the rule");
            }
        }

        return errors;
    }
}
