import Foundation
import UniLIPCore
import UniLIPNN

/// Configuration of UniLIP's generation head. JSON keys follow the reference where it has them
/// (`n_query`, `connect_layer`, `unilip_factor`); the LLM and DiT configs nest as
/// `llm_config` (transformers' Qwen2 keys) and `dit_config` (diffusers' SANA keys).
public struct UniLIPGeneratorConfig: Codable, Sendable, Equatable {
    /// Where `grid_position_embedding` is added (see `gridPositionEmbedding`).
    public enum GridPositionEmbedding: String, Codable, Sendable, CaseIterable {
        case none, reference
        case referenceAndQueries = "reference_and_queries"
    }

    /// What the DiT cross-attends to.
    public enum ConditionMode: String, Codable, Sendable, CaseIterable {
        /// UniLIP's "dual condition": the connector runs over every position (text, reference
        /// image, `<img>` and the queries) and the DiT reads all of them.
        case dual
        /// MetaQuery-style ablation: only the query slots' LLM outputs go through the connector
        /// and reach the DiT.
        case queriesOnly = "queries_only"
    }

    /// Learnable query slots appended after `<img>`: one per latent token (256 for a 16×16 latent).
    public var numQueries: Int
    /// Decoder layers in `llm_connector`, initialised from the LLM's last ones.
    public var connectLayers: Int
    /// The (frozen) LLM's config; the connector copies its layer shape.
    public var llmConfig: Qwen2Config
    public var ditConfig: SanaConfig
    public var conditionMode: ConditionMode
    /// Latent scale: the DiT works on z · factor; decode z / factor.
    public var latentScale: Float
    /// flow_shift of the sampling schedule (SANA's scheduler config: 3). Training uses shift 1.
    public var flowShift: Double
    /// Our extension, absent from the reference (`none` there and when the key is missing): a
    /// learnable grid-position embedding (`grid_position_embedding`, [1, n_query, d], initialised
    /// with the 2D sin-cos table) added in dual mode after the LLM, before the connector, to the
    /// reference image's tokens (`reference`) or to them and the query slots
    /// (`reference_and_queries`): token k of either grid gets row k, so the DiT can tell which
    /// reference token and which query stand for which latent position. Needs a square n_query
    /// and, for editing, as many reference tokens as queries.
    public var gridPositionEmbedding: GridPositionEmbedding
    /// Our extension, absent from the reference (false there and when the key is missing): a
    /// learnable [vocab, d] table (`text_embedding_offset`, zero-initialised) added to the frozen
    /// LLM's token embeddings on the generation path only, so the head can separate words the
    /// base LLM embeds almost alike (the tiny one's " top", " middle" and " bottom" have cosine
    /// 0.99) without touching the LLM that understanding shares.
    public var textEmbeddingOffset: Bool
    /// Side of the square query grid (the latent's), rounded when n_query is not square.
    public var gridSide: Int { Int(Double(numQueries).squareRoot().rounded()) }

    public init(numQueries: Int, connectLayers: Int, llmConfig: Qwen2Config, ditConfig: SanaConfig,
                conditionMode: ConditionMode = .dual, latentScale: Float = 1, flowShift: Double = 3,
                gridPositionEmbedding: GridPositionEmbedding = .none, textEmbeddingOffset: Bool = false) {
        self.numQueries = numQueries
        self.connectLayers = connectLayers
        self.llmConfig = llmConfig
        self.ditConfig = ditConfig
        self.conditionMode = conditionMode
        self.latentScale = latentScale
        self.flowShift = flowShift
        self.gridPositionEmbedding = gridPositionEmbedding
        self.textEmbeddingOffset = textEmbeddingOffset
    }

    enum CodingKeys: String, CodingKey {
        case numQueries = "n_query", connectLayers = "connect_layer", llmConfig = "llm_config"
        case ditConfig = "dit_config", conditionMode = "condition_mode", latentScale = "unilip_factor"
        case flowShift = "flow_shift", gridPositionEmbedding = "grid_position_embedding"
        case textEmbeddingOffset = "text_embedding_offset"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        numQueries = try c.decodeIfPresent(Int.self, forKey: .numQueries) ?? 256
        connectLayers = try c.decodeIfPresent(Int.self, forKey: .connectLayers) ?? 6
        llmConfig = try c.decode(Qwen2Config.self, forKey: .llmConfig)
        ditConfig = try c.decode(SanaConfig.self, forKey: .ditConfig)
        conditionMode = try c.decodeIfPresent(ConditionMode.self, forKey: .conditionMode) ?? .dual
        latentScale = try c.decodeIfPresent(Float.self, forKey: .latentScale) ?? 1
        flowShift = try c.decodeIfPresent(Double.self, forKey: .flowShift) ?? 3
        gridPositionEmbedding = try c.decodeIfPresent(GridPositionEmbedding.self, forKey: .gridPositionEmbedding) ?? .none
        textEmbeddingOffset = try c.decodeIfPresent(Bool.self, forKey: .textEmbeddingOffset) ?? false
    }

    /// UniLIP-1B: InternVL3-1B's Qwen2.5-0.5B, SANA-0.6B, 256 queries, 6 connector layers.
    public static let unilip1B = UniLIPGeneratorConfig(numQueries: 256, connectLayers: 6, llmConfig: .qwen25_05B,
                                                       ditConfig: .sana600M, latentScale: 10.6)

    /// UniLIP-3B: InternVL3-2B's Qwen2.5-1.5B, SANA-1.6B.
    public static let unilip3B = UniLIPGeneratorConfig(numQueries: 256, connectLayers: 6, llmConfig: .qwen25_15B,
                                                       ditConfig: .sana1600M, latentScale: 9.5)

    /// CPU-trainable: the tiny Qwen2 (width 128, 4 layers), 2 connector layers, 16 queries for a
    /// 4×4 latent, the tiny SANA (caption width 128).
    public static func tiny(vocabSize: Int = 520) -> UniLIPGeneratorConfig {
        UniLIPGeneratorConfig(numQueries: 16, connectLayers: 2, llmConfig: .tiny(vocabSize: vocabSize),
                              ditConfig: .tiny)
    }

    public func validate() throws {
        try llmConfig.validate()
        guard numQueries > 0 else { throw ModelConfigError("n_query must be positive, got \(numQueries)") }
        guard connectLayers >= 1 && connectLayers <= llmConfig.numHiddenLayers else {
            throw ModelConfigError("connect_layer \(connectLayers) must be in 1...\(llmConfig.numHiddenLayers) (the LLM's layers)")
        }
        if let reason = ditConfig.unsupportedReason { throw ModelConfigError("dit_config: \(reason)") }
        guard ditConfig.resolvedOutChannels == ditConfig.inChannels else {
            throw ModelConfigError("dit_config: out_channels \(ditConfig.resolvedOutChannels) must equal in_channels \(ditConfig.inChannels) (velocity prediction)")
        }
        guard latentScale.isFinite && latentScale > 0 else {
            throw ModelConfigError("unilip_factor must be positive, got \(latentScale)")
        }
        guard flowShift.isFinite && flowShift > 0 else { throw ModelConfigError("flow_shift must be positive, got \(flowShift)") }
        if gridPositionEmbedding != .none {
            guard gridSide * gridSide == numQueries, llmConfig.hiddenSize % 4 == 0 else {
                throw ModelConfigError("grid_position_embedding needs a square n_query (got \(numQueries)) and a hidden size divisible by 4 (got \(llmConfig.hiddenSize))")
            }
        }
    }
}

/// The DiT's condition: caption tokens and their keep-mask.
public struct GenerationConditioning {
    /// [B, L, caption_channels]
    public var encoderHiddenStates: Tensor
    /// [B, L]: 1 for real tokens, 0 for padding.
    public var mask: Tensor

    public init(encoderHiddenStates: Tensor, mask: Tensor) {
        precondition(encoderHiddenStates.rank == 3 && mask.shape == Array(encoderHiddenStates.shape.prefix(2)),
                     "GenerationConditioning: states \(encoderHiddenStates.shape) with mask \(mask.shape)")
        self.encoderHiddenStates = encoderHiddenStates
        self.mask = mask
    }

    public var batch: Int { encoderHiddenStates.shape[0] }
    public var length: Int { encoderHiddenStates.shape[1] }

    /// A subset of the rows (for example the cond and uncond halves of one batched LLM pass).
    public func rows(_ range: Range<Int>) -> GenerationConditioning {
        precondition(range.lowerBound >= 0 && range.upperBound <= batch && !range.isEmpty,
                     "GenerationConditioning: rows \(range) outside 0..<\(batch)")
        return GenerationConditioning(
            encoderHiddenStates: encoderHiddenStates.sliced(axis: 0, start: range.lowerBound, end: range.upperBound),
            mask: mask.sliced(axis: 0, start: range.lowerBound, end: range.upperBound))
    }

    /// Rows of several conditionings stacked in order; shorter ones are padded at the end with
    /// zero states and mask 0 (the DiT ignores them). Batches cond and uncond for guidance.
    public static func concatenated(_ parts: [GenerationConditioning]) -> GenerationConditioning {
        precondition(!parts.isEmpty, "GenerationConditioning.concatenated: nothing to concatenate")
        if parts.count == 1 { return parts[0] }
        let c = parts[0].encoderHiddenStates.shape[2]
        let length = parts.map(\.length).max() ?? 0
        var states: [Tensor] = [], masks: [Tensor] = []
        for p in parts {
            precondition(p.encoderHiddenStates.shape[2] == c, "GenerationConditioning: widths \(c) and \(p.encoderHiddenStates.shape[2])")
            let pad = length - p.length
            if pad == 0 {
                states.append(p.encoderHiddenStates)
                masks.append(p.mask)
            } else {
                states.append(Tensor.concat([p.encoderHiddenStates, Tensor(zeros: [p.batch, pad, c])], axis: 1))
                masks.append(Tensor.concat([p.mask, Tensor(zeros: [p.batch, pad])], axis: 1))
            }
        }
        return GenerationConditioning(encoderHiddenStates: Tensor.concat(states, axis: 0),
                                      mask: Tensor.concat(masks, axis: 0))
    }
}

/// Where the `<IMG_CONTEXT>` slots of each prompt row sit (positions within the row).
public struct GenerationSlots: Equatable {
    /// The output image's query slots, `numQueries` per row.
    public var queries: [[Int]]
    /// The reference image's slots: T per edit row, empty for text-to-image rows.
    public var references: [[Int]]

    /// Reads the layout from templated rows: among a row's real (mask 1) `<IMG_CONTEXT>` tokens,
    /// the last `queries` are query slots; a row with `queries + referenceTokens` of them is an
    /// edit row whose first `referenceTokens` are the reference image. Anything else is a
    /// programmer error.
    public init(ids: [Int], batch: Int, mask: Tensor, contextID: Int, queries: Int, referenceTokens: Int) {
        precondition(batch > 0 && ids.count % batch == 0, "GenerationSlots: \(ids.count) ids do not split into \(batch) rows")
        let length = ids.count / batch
        precondition(mask.shape == [batch, length], "GenerationSlots: mask \(mask.shape) must be \([batch, length])")
        var q: [[Int]] = [], r: [[Int]] = []
        let m = mask.pointer
        for row in 0..<batch {
            var slots: [Int] = []
            for p in 0..<length where ids[row * length + p] == contextID && m[row * length + p] != 0 { slots.append(p) }
            let refs = slots.count - queries
            precondition(refs == 0 || (referenceTokens > 0 && refs == referenceTokens),
                         "GenerationSlots: row \(row) has \(slots.count) <IMG_CONTEXT> tokens; expected \(queries) (text-to-image)"
                         + (referenceTokens > 0 ? " or \(queries + referenceTokens) (edit)" : ""))
            r.append(Array(slots[0..<refs]))
            q.append(Array(slots[refs...]))
        }
        self.queries = q
        self.references = r
    }

    /// Rows that hold a reference image, in order.
    public var editRows: [Int] { references.indices.filter { !references[$0].isEmpty } }
}

/// UniLIP's generation head: `latent_queries`, `llm_connector`, `projector`, `dit`, named as in
/// the reference checkpoint. The LLM is not a child: it is frozen and shared with
/// understanding, so every call that needs it takes it as an argument.
///
/// Conditioning ("dual condition"): the templated prompt with `<img>` + N `<IMG_CONTEXT>` query
/// slots (and, for editing, the reference image's `<img>` + T `<IMG_CONTEXT>` + `</img>`) goes
/// through the frozen LLM with the query slots replaced by `latent_queries` and the reference
/// slots by the image's mlp1 tokens; the LLM's normed last hidden states at every position
/// (reference positions overwritten again by the raw mlp1 tokens) pass through the
/// bidirectional connector and the projector to become the DiT's caption tokens.
public final class UniLIPGenerator: Module {
    public let config: UniLIPGeneratorConfig
    /// [1, N, d], initialised N(0, 1).
    public let latentQueries: Tensor
    /// A Qwen2 stack without embeddings: `layers.0..<K`, `norm`.
    public let llmConnector: Qwen2Model
    /// Linear d → caption_channels.
    public let projector: Linear
    public let dit: SanaTransformer2DModel
    /// [1, N, d] unless `config.gridPositionEmbedding` is `none`.
    public let gridPositions: Tensor?
    /// [vocab, d] zeros when `config.textEmbeddingOffset`, else nil.
    public let textEmbeddingOffset: Tensor?
    /// Training noise schedule: FlowMatchEuler with shift 1 (the reference ignores SANA's flow_shift here).
    public let trainingSchedule = FlowMatchEulerScheduler(numTrainTimesteps: 1000, shift: 1)

    public init(_ config: UniLIPGeneratorConfig, rng: inout RandomGenerator) {
        do { try config.validate() } catch { preconditionFailure("UniLIPGenerator: \(error)") }
        self.config = config
        let d = config.llmConfig.hiddenSize
        latentQueries = Tensor.normal([1, config.numQueries, d], rng: &rng)
        llmConnector = Qwen2Model(config.llmConfig, embedding: false, layerCount: config.connectLayers, rng: &rng)
        projector = Linear(d, config.ditConfig.captionChannels, rng: &rng)
        dit = SanaTransformer2DModel(config.ditConfig, rng: &rng)
        if config.gridPositionEmbedding != .none {
            let side = config.gridSide
            gridPositions = SanaPatchEmbed.sinCosPositionEmbedding(
                width: d, height: side, widthTokens: side, baseSize: side, interpolationScale: 1).reshaped([1, config.numQueries, d])
        } else {
            gridPositions = nil
        }
        textEmbeddingOffset = config.textEmbeddingOffset ? Tensor(zeros: [config.llmConfig.vocabSize, d]) : nil
        super.init()
        parameter("latent_queries", latentQueries)
        if let gridPositions { parameter("grid_position_embedding", gridPositions) }
        if let textEmbeddingOffset { parameter("text_embedding_offset", textEmbeddingOffset) }
        child("llm_connector", llmConnector)
        child("projector", projector)
        child("dit", dit)
    }

    /// Copies the LLM's last K decoder layers and its final norm into the connector (the
    /// reference's initialisation).
    public func initConnector(from llm: Qwen2Model) {
        checkLLM(llm)
        let k = config.connectLayers, n = llm.layers.count
        precondition(n >= k, "UniLIPGenerator: the LLM has \(n) layers, the connector needs \(k)")
        for i in 0..<k { copy(from: llm.layers[n - k + i], into: llmConnector.layers[i]) }
        copy(from: llm.norm, into: llmConnector.norm)
    }

    private func copy(from source: Module, into target: Module) {
        let src = source.namedParameters(), dst = target.namedParameters()
        precondition(src.map(\.0) == dst.map(\.0), "UniLIPGenerator: connector layout differs from the LLM's")
        for ((name, s), (_, t)) in zip(src, dst) {
            precondition(s.shape == t.shape, "UniLIPGenerator: \(name) \(s.shape) vs \(t.shape)")
            t.assign(s)
        }
    }

    private func checkLLM(_ llm: Qwen2Model) {
        let a = llm.config, b = config.llmConfig
        precondition(a.hiddenSize == b.hiddenSize && a.numAttentionHeads == b.numAttentionHeads
                     && a.numKeyValueHeads == b.numKeyValueHeads && a.headDim == b.headDim
                     && a.intermediateSize == b.intermediateSize,
                     "UniLIPGenerator: the LLM's shape (d \(a.hiddenSize), \(a.numAttentionHeads)/\(a.numKeyValueHeads) heads) differs from llm_config's (d \(b.hiddenSize), \(b.numAttentionHeads)/\(b.numKeyValueHeads))")
    }

    // MARK: Conditioning

    /// The DiT's condition for templated prompt rows.
    ///
    /// - llm: the frozen language model (its parameters should not require gradients; the
    ///   graph is still recorded through it so the queries receive gradients).
    /// - ids: [batch, L] token ids, row-major, any padding side.
    /// - mask: [batch, L], 1 real / 0 padding. Positions are cumsum(mask) − 1.
    /// - contextID: the `<IMG_CONTEXT>` id (151667 in InternVL3).
    /// - referenceTokens: [R, T, d] mlp1 tokens, one image per edit row in row order (see
    ///   `GenerationSlots` for how edit rows are recognised); nil for text-to-image only.
    /// - mode: overrides `config.conditionMode`.
    ///
    /// Dual mode returns [batch, L, caption_channels] with `mask` as the encoder mask (outputs at
    /// padded positions are unspecified and masked out by the DiT). Queries-only mode returns
    /// [batch, N, caption_channels] with an all-ones mask.
    public func conditioning(llm: Qwen2Model, ids: [Int], batch: Int, mask: Tensor, contextID: Int,
                             referenceTokens: Tensor? = nil,
                             mode: UniLIPGeneratorConfig.ConditionMode? = nil) -> GenerationConditioning {
        checkLLM(llm)
        let d = config.llmConfig.hiddenSize, n = config.numQueries
        let t = referenceTokens.map { $0.rank == 3 ? $0.shape[1] : 0 } ?? 0
        let slots = GenerationSlots(ids: ids, batch: batch, mask: mask, contextID: contextID, queries: n,
                                    referenceTokens: t)
        let length = ids.count / batch
        let editRows = slots.editRows
        if let referenceTokens {
            precondition(referenceTokens.rank == 3 && referenceTokens.shape[2] == d,
                         "UniLIPGenerator: reference tokens must be [R, T, \(d)], got \(referenceTokens.shape)")
            precondition(referenceTokens.shape[0] == editRows.count,
                         "UniLIPGenerator: \(referenceTokens.shape[0]) reference images for \(editRows.count) edit rows")
        }
        let positions = Qwen2Model.positions(fromMask: mask)

        // (a) Input embeddings: rows of [text; queries; reference tokens] picked per position.
        var text = llm.embed(ids, batch: batch).reshaped([batch * length, d])
        if let textEmbeddingOffset { text = text + textEmbeddingOffset.indexSelect(axis: 0, ids) }
        let queryBase = batch * length, refBase = queryBase + n
        var index = Array(0..<(batch * length))
        for row in 0..<batch {
            for (k, p) in slots.queries[row].enumerated() { index[row * length + p] = queryBase + k }
        }
        for (e, row) in editRows.enumerated() {
            for (k, p) in slots.references[row].enumerated() { index[row * length + p] = refBase + e * t + k }
        }
        var table = [text, latentQueries.reshaped([n, d])]
        if let referenceTokens { table.append(referenceTokens.reshaped([editRows.count * t, d])) }
        let embeddings = Tensor.concat(table, axis: 0).indexSelect(axis: 0, index).reshaped([batch, length, d])

        // (b) The frozen LLM, causal, last hidden state after its final norm.
        let hidden = llm(embeddings: embeddings, positions: positions, keyPadding: mask, causal: true).lastHiddenState

        switch mode ?? config.conditionMode {
        case .dual:
            // (c) Edit rows: the reference positions carry the raw mlp1 tokens again.
            var states = hidden
            if let referenceTokens, !editRows.isEmpty {
                var overwrite = Array(0..<(batch * length))
                for (e, row) in editRows.enumerated() {
                    for (k, p) in slots.references[row].enumerated() { overwrite[row * length + p] = batch * length + e * t + k }
                }
                states = Tensor.concat([hidden.reshaped([batch * length, d]),
                                        referenceTokens.reshaped([editRows.count * t, d])], axis: 0)
                    .indexSelect(axis: 0, overwrite).reshaped([batch, length, d])
            }
            if let gridPositions {
                states = states + gridPositionTerms(gridPositions, slots: slots, length: length)
            }
            // (d) Bidirectional connector over every position, (e) projector.
            let connected = llmConnector(embeddings: states, positions: positions, keyPadding: mask,
                                         causal: false).lastHiddenState
            return GenerationConditioning(encoderHiddenStates: projector(connected), mask: mask)
        case .queriesOnly:
            var gather: [Int] = [], queryPositions: [Int] = []
            for row in 0..<batch {
                for p in slots.queries[row] {
                    gather.append(row * length + p)
                    queryPositions.append(positions[row * length + p])
                }
            }
            let queries = hidden.reshaped([batch * length, d]).indexSelect(axis: 0, gather).reshaped([batch, n, d])
            let connected = llmConnector(embeddings: queries, positions: queryPositions, causal: false).lastHiddenState
            return GenerationConditioning(encoderHiddenStates: projector(connected),
                                          mask: Tensor(repeating: 1, shape: [batch, n]))
        }
    }

    /// [batch, L, d]: row k of `table` at the k-th reference slot (and query slot, per the
    /// config) of each row, zero elsewhere.
    private func gridPositionTerms(_ table: Tensor, slots: GenerationSlots, length: Int) -> Tensor {
        let n = config.numQueries, d = table.shape[2], batch = slots.queries.count
        var index = [Int](repeating: 0, count: batch * length)
        for row in 0..<batch {
            let references = slots.references[row]
            precondition(references.isEmpty || references.count == n,
                         "UniLIPGenerator: grid_position_embedding has \(n) positions, the reference image \(references.count) tokens")
            for (k, p) in references.enumerated() { index[row * length + p] = 1 + k }
            if config.gridPositionEmbedding == .referenceAndQueries {
                for (k, p) in slots.queries[row].enumerated() { index[row * length + p] = 1 + k }
            }
        }
        return Tensor.concat([Tensor(zeros: [1, d]), table.reshaped([n, d])], axis: 0)
            .indexSelect(axis: 0, index).reshaped([batch, length, d])
    }

    /// `conditioning(llm:…)` with an InternVL model: its language model, and reference images
    /// given as normalised pixels [R, 3, S, S] turned into mlp1 tokens (without a graph: the
    /// vision tower and mlp1 are frozen during generation training).
    public func conditioning(model: InternVLChatModel, ids: [Int], batch: Int, mask: Tensor, contextID: Int,
                             referencePixels: Tensor? = nil,
                             mode: UniLIPGeneratorConfig.ConditionMode? = nil) -> GenerationConditioning {
        let tokens = referencePixels.map { pixels in withNoGrad { model.imageTokens(pixels) } }
        return conditioning(llm: model.language.model, ids: ids, batch: batch, mask: mask, contextID: contextID,
                            referenceTokens: tokens, mode: mode)
    }

    // MARK: DiT

    /// The DiT's velocity for latents [B, C, h, w] at timesteps (values in [0, 1000], one per row).
    public func velocity(_ latents: Tensor, timesteps: [Float], conditioning: GenerationConditioning) -> Tensor {
        precondition(conditioning.batch == latents.shape[0],
                     "UniLIPGenerator: \(conditioning.batch) conditioning rows for \(latents.shape[0]) latents")
        return dit(latents, encoderHiddenStates: conditioning.encoderHiddenStates, timesteps: timesteps,
                   encoderAttentionMask: conditioning.mask)
    }

    /// Rectified-flow loss on clean latents x0 [B, C, h, w] (already scaled by `unilip_factor`):
    /// u ~ logit-normal(0, 1), index ⌊1000u⌋ into the training table (the reference's shift 1
    /// unless `schedule` says otherwise), x_σ = (1 − σ)x0 + σε, MSE between the DiT's output and ε − x0.
    public func flowMatchingLoss(_ x0: Tensor, conditioning: GenerationConditioning,
                                 schedule: FlowMatchEulerScheduler? = nil,
                                 rng: inout RandomGenerator) -> Tensor {
        let table = schedule ?? trainingSchedule
        precondition(x0.rank == 4 && x0.shape[1] == config.ditConfig.inChannels,
                     "UniLIPGenerator: latents must be [B, \(config.ditConfig.inChannels), h, w], got \(x0.shape)")
        let (timesteps, sigmas) = FlowMatching.sampleTimesteps(batch: x0.shape[0], schedule: table, rng: &rng)
        let noise = Tensor.normal(x0.shape, rng: &rng)
        let noisy = FlowMatching.interpolate(x0, noise: noise, sigmas: sigmas)
        let prediction = velocity(noisy, timesteps: timesteps, conditioning: conditioning)
        return mseLoss(prediction, FlowMatching.velocityTarget(x0, noise: noise))
    }
}
