-- Delivered receipts for one-to-one conversations: how far a participant's devices have
-- received the conversation (a device acknowledges what a push or a sync brought it). Reading
-- implies receiving, so a read moves it too. Only moves forward.

ALTER TABLE conversation_member ADD COLUMN delivered_seq INTEGER NOT NULL DEFAULT 0; -- highest seq a device of this user received
UPDATE conversation_member SET delivered_seq = read_seq;
