-- Usage an admin can read (issue 12): the member's display name and the channel's name are kept
-- with each reservation when it is made, so /usage names people and channels without the members
-- intent (and after they left). Old rows have none and show their id.
ALTER TABLE reservations ADD COLUMN user_name TEXT;
ALTER TABLE reservations ADD COLUMN channel_name TEXT;
