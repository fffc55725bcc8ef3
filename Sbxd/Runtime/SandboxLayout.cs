using Hive.Protos.V1;

namespace Hive.Sbxd.Runtime;

/// <summary>Every host-side name and path of one sandbox, derived from its state dir and (validated) name.</summary>
internal sealed class SandboxLayout
{
    public SandboxLayout(string stateDir, SandboxSpec spec)
    {
        StateDir = Path.GetFullPath(stateDir).TrimEnd('/');
        Spec = spec;
        if (!System.Text.RegularExpressions.Regex.IsMatch(spec.Name, "^[a-z0-9][a-z0-9._-]{0,62}$") || spec.Name.Contains("..", StringComparison.Ordinal))
        {
            throw new InvalidDataException($"invalid sandbox name '{spec.Name}' in spec");
        }
    }

    public SandboxSpec Spec { get; }

    public string Name => Spec.Name;

    public string StateDir { get; }

    public string SpecFile => Path.Combine(StateDir, "spec.pb");

    public string PidFile => Path.Combine(StateDir, "sbxd.pid");

    public string LockFile => Path.Combine(StateDir, "sbxd.lock");

    public string SbxdSocket => Path.Combine(StateDir, "sbxd.sock");

    public string AgentSocket => Path.Combine(StateDir, "agent.sock");

    /// <summary>The agent's output, size-capped by Sbxd (rotated to agent.log.1).</summary>
    public string AgentLog => Path.Combine(StateDir, "agent.log");

    /// <summary>The FIFO that is the agent's stdout and stderr; Sbxd drains it into <see cref="AgentLog"/>.</summary>
    public string AgentFifo => Path.Combine(StateDir, "agent.fifo");

    public string CommandsFile => Path.Combine(StateDir, "commands");

    /// <summary>Where producers (SbxFuse, SbxProxy, the Controller) hand events to Sbxd.</summary>
    public string SpoolDir => Path.Combine(StateDir, "spool");

    /// <summary>The durable event log; outside the state dir so it outlives the sandbox.</summary>
    public string EventsDir => Spec.EventsDir.Length > 0 ? Spec.EventsDir : Path.Combine(StateDir, "events");

    /// <summary>Present once lifecycle.created is on record (later starts record lifecycle.started only).</summary>
    public string CreatedMarker => Path.Combine(StateDir, "created");

    /// <summary>
    /// The overlay's upper layer: the sandbox's own changes, /tmp included. On the sandbox's disk
    /// (<see cref="DiskMount"/>) when it has a <c>disk</c> limit; in the state dir itself for a sandbox
    /// made before disk quotas.
    /// </summary>
    public string Upper => Path.Combine(Spec.HasDiskBytes ? DiskMount : StateDir, "upper");

    public string Work => Path.Combine(Spec.HasDiskBytes ? DiskMount : StateDir, "work");

    /// <summary>The ext4 image holding the writable layer (sparse; as large as the sandbox's <c>disk</c>).</summary>
    public string DiskImage => Path.Combine(StateDir, "disk.img");

    /// <summary>Where <see cref="DiskImage"/> is loop-mounted while the sandbox exists.</summary>
    public string DiskMount => Path.Combine(StateDir, "disk");

    /// <summary>
    /// The overlay mount point, the container's root. With a user namespace it lies outside the 0700
    /// state dir (see <see cref="RuntimeDir"/>): runc mounts the root from inside the namespace, as the
    /// sandbox's root, which is nobody on the host and cannot pass a 0700 directory of the host's root.
    /// </summary>
    public string Rootfs => UsesUserNamespace ? Path.Combine(RuntimeDir, "rootfs") : Path.Combine(StateDir, "rootfs");

    /// <summary>The container runs in a user namespace of its own (its spec names an id lease pool).</summary>
    public bool UsesUserNamespace => Spec.IdLeasesDir.Length > 0;

    /// <summary>A bind mount of the sandbox's user namespace (nsfs), which keeps it while no process is in it.</summary>
    public string UserNamespaceFile => Path.Combine(StateDir, "userns");

    /// <summary>
    /// <c>/run/hive/&lt;tag&gt;/&lt;name&gt;</c>: the directory holding the rootfs mount point of a sandbox with a user
    /// namespace, <c>root:&lt;range root&gt;</c> mode 0710, so only the sandbox's root group can pass it (runc's
    /// mount of the root, from inside the namespace) and no other host user can. The tag, from the
    /// Controller's sandboxes directory, keeps two Controllers on one host apart.
    /// </summary>
    public string RuntimeDir => Path.Combine(
        "/run/hive",
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Path.GetDirectoryName(StateDir) ?? "/")))[..8],
        Name);

    public string Bundle => Path.Combine(StateDir, "bundle");

    /// <summary>
    /// A small tmpfs of the sandbox's own holding every host-side source the container binds
    /// (resolver, trust store, workspace mount points, the agent's mount). A bind shows its path
    /// inside the source file system in the container's mountinfo; on this tmpfs that path is
    /// short (<c>/resolv.conf</c>, <c>/mounts/0</c>) and says nothing about the host.
    /// </summary>
    public string BindsDir => Path.Combine(StateDir, "binds");

    /// <summary>The agent bundle as a read-only overlay of its own (root = the bundle), bound at /.hive.</summary>
    public string AgentMount => Path.Combine(BindsDir, "agent");

    public string ContainerId => "hive-" + Name;

    public string NetnsName => "hive-" + Name;

    public string NetnsPath => "/run/netns/" + NetnsName;

    public string CgroupPath => "/hive/" + Name;

    public static SandboxLayout Load(string stateDir)
    {
        var spec = SandboxSpec.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(stateDir, "spec.pb")));
        return new SandboxLayout(stateDir, spec);
    }
}
