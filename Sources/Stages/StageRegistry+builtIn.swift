import Pipeline

extension StageRegistry {
    /// Every stage and delivery policy framepipe ships, in the order they usually appear in a pipeline.
    /// Start from this to add your own: `var r = StageRegistry.builtIn; try r.register(MyStage.self)`.
    public static var builtIn: StageRegistry {
        var registry = StageRegistry()
        // The names are distinct constants; a failure here is a bug caught by the tests.
        try! registry.register(SizeLimitStage.self)
        try! registry.register(RateLimitStage.self)
        try! registry.register(Base64ValidationStage.self)
        try! registry.register(DecodeCheckStage.self)
        try! registry.register(ErrorCounterStage.self)
        try! registry.register(PictureHealthStage.self)
        try! registry.register(DownscaleStage.self)
        try! registry.register(FanOutStage.self)
        try! registry.register(policy: GoodputPolicy.self)
        return registry
    }
}
