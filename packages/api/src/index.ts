export * from "./gen/chat/v1/admin_pb.js";
export * from "./gen/chat/v1/chat_pb.js";
export * from "./gen/chat/v1/common_pb.js";
export * from "./gen/chat/v1/delivery_pb.js";
export * from "./gen/chat/v1/event_pb.js";
export * from "./gen/chat/v1/gateway_pb.js";
export * from "./gen/chat/v1/room_pb.js";
export * as reflectionV1 from "./gen/grpc/reflection/v1/reflection_pb.js";
export * as reflectionV1alpha from "./gen/grpc/reflection/v1alpha/reflection_pb.js";
