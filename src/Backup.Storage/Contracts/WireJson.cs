using System.Text.Json;
using System.Text.Json.Serialization;
using Backup.Storage.Crypto;
using Backup.Storage.Format;
using Backup.Storage.Vault;

namespace Backup.Storage.Contracts;

/// <summary>
/// Serialization code for the agent's wire contracts and the format's JSON documents (tree, manifest), generated at build
/// time: the agent is compiled ahead of time (native, no JIT, no reflection over types), and these write the same JSON as
/// the serializer's web defaults did (camelCase names, enums as their converters say; nulls left out, which every reader
/// takes as null).
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Tree))]
[JsonSerializable(typeof(Manifest))]
[JsonSerializable(typeof(EnrolAgentRequest))]
[JsonSerializable(typeof(EnrolAgentResponse))]
[JsonSerializable(typeof(AgentJob))]
[JsonSerializable(typeof(JobLeaseRenewal))]
[JsonSerializable(typeof(ReleaseJobRequest))]
[JsonSerializable(typeof(PackStored))]
[JsonSerializable(typeof(IReadOnlyList<SkippedItem>))]
[JsonSerializable(typeof(List<ChunkLocation>))]
[JsonSerializable(typeof(FailJobRequest))]
[JsonSerializable(typeof(CompleteRestoreRequest))]
public sealed partial class WireJson : JsonSerializerContext;

/// <summary>
/// The key file and the vault's audit anchors, as the serializer's plain defaults write them (property names as declared
/// unless a <see cref="JsonPropertyNameAttribute"/> says otherwise). Generated at build time, as <see cref="WireJson"/>.
/// </summary>
[JsonSerializable(typeof(KeyFile))]
[JsonSerializable(typeof(AuditAnchor))]
public sealed partial class DocumentJson : JsonSerializerContext;
